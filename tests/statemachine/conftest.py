"""The real template and state machine on the local engine, with the fixture jobs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scenario_support import FIXTURE_JOBS, LAMBDA_TIMEOUT_SECONDS, ROOT

from stepburst_local import LocalEngine


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(
        ROOT,
        jobs_dir=FIXTURE_JOBS,
        time_scale=0.01,
        function_timeouts={"ProcessItemsFunction": LAMBDA_TIMEOUT_SECONDS},
        quiet=True,
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def _clear_faults(engine: LocalEngine) -> Iterator[None]:
    engine.faults.clear()
    yield
    engine.faults.clear()
