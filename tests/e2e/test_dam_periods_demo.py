"""``stepburst demo dam-periods``: the Cloudburst workload end to end, in its own engine.

Its own module: the demo starts an engine in this process, so no other module's engine may be
running here when it does.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from stepburst_local.workloads import run_workload

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ITEMS = [f"Dam{dam:03d}/Period{period:02d}" for dam in (1, 2) for period in (1, 2, 3)]


def test_the_demo_runs_the_workload_and_keeps_its_outputs() -> None:
    written = io.StringIO()
    assert run_workload("dam-periods", ROOT, out=written) == 0
    text = written.getvalue()
    assert "(6 SUCCEEDED)" in text
    kept = Path(text.split("outputs kept at ", 1)[1].split("/DamNNN", 1)[0])
    try:
        summaries = sorted(kept.glob("Dam*/Period*/out/summary.json"))
        assert [path.parent.parent.relative_to(kept).as_posix() for path in summaries] == ITEMS
    finally:
        shutil.rmtree(kept)
