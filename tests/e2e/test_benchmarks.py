"""The engine's benchmarks on tiny inputs, so that none of them can rot: each runs as a user
runs it (a new process), must exit 0 and print its figures. Their speed is not checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _bench(script: str, *arguments: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *arguments],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_engine_overhead_reports_each_child_shape() -> None:
    out = _bench("engine_overhead.py", "--items", "12", "--concurrency", "4")

    for shape in ("pass", "lambda", "lambda+dynamodb"):
        assert f"  {shape} " in out
    assert "ms per item" in out
    assert "Lambda child:" in out
    assert "ratio" in out


def test_engine_s3_reads_back_every_byte_and_reports_its_rates() -> None:
    out = _bench("engine_s3.py", "--sizes-mb", "1", "3", "--chunk-mb", "0.5", "--part-mb", "5")

    lines = [line for line in out.splitlines() if "ranged reads" in line]
    assert len(lines) == 2
    assert all("put_object" in line and "multipart" in line for line in lines)
    assert "read ratio" in out


def test_finalize_scale_runs_a_job_end_to_end_and_times_status() -> None:
    out = _bench("finalize_scale.py", "--items", "20")

    assert "20 items  SUCCEEDED" in out
    assert "Finalize" in out
    assert "(SUCCEEDED)" in out  # what `stepburst status` printed for the run
    assert "ratios to the 100,000-item targets" in out


def test_demo_wall_time_runs_the_demo() -> None:
    out = _bench("demo_wall_time.py", "--repeat", "1")

    assert "run 1:" in out
    assert " s  ok" in out
    assert "against a 15 s target" in out
