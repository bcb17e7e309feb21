"""The stepburst CLI as a user runs it, in its own process, against a running local engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.polling import Pending, poll

from stepburst_local import LocalEngine

ROOT = Path(__file__).resolve().parents[2]


def cli_command(engine: LocalEngine, *argv: str, jobs_dir: Path | None = None) -> list[str]:
    """The command line of ``stepburst --local`` with ``argv``, against ``engine``."""
    return [
        sys.executable,
        "-m",
        "stepburst.cli",
        "--local",
        "--endpoint",
        engine.endpoint_url,
        "--jobs-dir",
        str(jobs_dir or ROOT / "jobs"),
        *argv,
    ]


def cli_environment() -> dict[str, str]:
    """The engine's endpoint only: no credentials or region of the machine running the tests."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def run_cli(
    engine: LocalEngine, *argv: str, jobs_dir: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``stepburst --local`` with ``argv``, whatever its exit code."""
    return subprocess.run(
        cli_command(engine, *argv, jobs_dir=jobs_dir),
        capture_output=True,
        text=True,
        env=cli_environment(),
        timeout=timeout,
        check=False,
    )


def cli_output(engine: LocalEngine, *argv: str, check: int | None = 0, timeout: float = 120) -> str:
    """What the CLI printed on stdout, once it exited with ``check`` (None: any code)."""
    completed = run_cli(engine, *argv, timeout=timeout)
    if check is not None:
        assert completed.returncode == check, completed.stdout + completed.stderr
    return completed.stdout


def finished_run(engine: LocalEngine, execution_arn: str, timeout: float = 600) -> dict[str, Any]:
    """The run record of a SUCCEEDED execution, once Finalize has ended it."""
    description = engine.wait_for_execution(execution_arn, timeout=timeout)
    assert description["status"] == "SUCCEEDED", description
    link = engine.ledger().execution_link(execution_arn)
    assert link is not None

    def ended() -> dict[str, Any] | Pending:
        run = engine.ledger().get_run(str(link["run_id"])) or {}
        return run if run.get("status") not in (None, "RUNNING") else Pending(run.get("status"))

    return poll(ended, what="the run's record", timeout=30, interval=0.1)
