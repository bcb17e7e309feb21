"""The data-plane benchmarks on tiny inputs, so that none of them can rot. Their speed figures
are not checked (the machine is shared), only that each runs to its end and that what each must
always hold, holds: the processor writes what its frozen reference writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def run_bench(name: str, *arguments: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / name), *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_jsonl_throughput_matches_its_reference(tmp_path: Path) -> None:
    output = run_bench(
        "jsonl_throughput.py", "--size-mb", "0.3", "--repeat", "1", "--data-dir", str(tmp_path)
    )

    assert output.count("identical to the reference") == 3
    assert "processor / plain read+write" in output


def test_item_path_over_tls_uploads_what_local_processing_writes(tmp_path: Path) -> None:
    output = run_bench(
        "item_path_tls.py", "--size-mb", "0.5", "--repeat", "1", "--data-dir", str(tmp_path)
    )

    # Both endpoints, each line naming the one it used.
    for endpoint in ("[lean S3 endpoint]", "[moto S3 server]"):
        assert f"{endpoint} output uploaded identical to the local output" in output
        assert f"{endpoint} I/O overhead over local files: wall" in output
        assert "worker CPU" in output
        assert f"{endpoint} UploadPart of 16 MiB over TLS" in output
    assert "CRC32C, CRT" in output


def test_two_core_scaling_writes_the_same_output_on_several_processes(tmp_path: Path) -> None:
    output = run_bench(
        "two_core_scaling.py", "--size-mb", "0.5", "--repeat", "1", "--data-dir", str(tmp_path)
    )

    assert "processing scaling" in output
    assert "start-up included" in output
    assert "item output on several processes identical to one process's" in output
