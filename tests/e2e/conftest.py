"""The project's own template, state machine and jobs on the local engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stepburst_local import LocalEngine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(ROOT, time_scale=0.01, quiet=True) as running:
        yield running
