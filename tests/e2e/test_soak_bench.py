"""bench/soak.py on a tiny input, so that the benchmark cannot rot (its figures are not checked
for speed, only for what it must always report: nothing lost, nothing duplicated)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_the_soak_loses_and_duplicates_nothing() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--uploads", "2", "--lines", "120"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    figures = {}
    for line in completed.stdout.splitlines()[1:]:
        name, _, value = line.strip().partition("  ")
        figures[name] = value.strip()
    assert figures["runs completed"] == "2 of 2"
    assert figures["records lost"] == "0"
    assert figures["duplicated records"] == "0"
    assert figures["ledger != S3 (runs)"] == "0"
