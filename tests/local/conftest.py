"""Fixtures for the engine's conformance tests (see local_stage.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from local_stage import Stage, create_stage

from stepburst_local.cloud import LocalCloud


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    with LocalCloud(time_scale=0.01) as cloud:
        yield create_stage(cloud)


@pytest.fixture(autouse=True)
def _no_leftover_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stage" in request.fixturenames:
        request.getfixturevalue("stage").cloud.faults.clear()
