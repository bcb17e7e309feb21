"""bench/plan_scale.py on tiny inputs, so that the benchmark cannot rot (its figures are not
checked for speed, only that each size plans every item and reports against the targets)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", ["items", "function"])
def test_the_plan_benchmark_reports_each_size(kind: str) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "plan_scale.py"),
            "--sizes",
            "50",
            "300",
            "--kind",
            kind,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[1].startswith("  50: ")
    assert lines[2].startswith("  300: ")
    assert "of 200 MB" in lines[2]
