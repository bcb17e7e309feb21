"""`stepburst logs RUN --follow` against the local engine: it prints what is logged after it
started, and it ends when the run ends.

The CLI runs as its own process, as from a terminal.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.cli_runner import cli_command, cli_environment
from tests.polling import Pending, poll

from stepburst_local import LocalEngine

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_JOBS = ROOT / "tests" / "fixtures" / "jobs"
DEADLINE_SECONDS = 60
ITEM_SECONDS = 6
"""How long the item works before it fails: its error line comes well after the follower
started."""


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(ROOT, jobs_dir=FIXTURE_JOBS, time_scale=0.01, quiet=True) as running:
        yield running


def cli_json(engine: LocalEngine, *argv: str) -> Any:
    completed = subprocess.run(
        cli_command(engine, *argv, "--json", jobs_dir=FIXTURE_JOBS),
        capture_output=True,
        text=True,
        env=cli_environment(),
        timeout=DEADLINE_SECONDS,
        check=False,
    )
    assert completed.returncode in (0, 1), completed.stdout + completed.stderr
    return json.loads(completed.stdout)


def test_follow_prints_a_later_line_and_ends_with_the_run(engine: LocalEngine) -> None:
    started = cli_json(
        engine, "start", "scenario-lambda", "--items", f"latefail-{ITEM_SECONDS}", "--apply"
    )
    run_id = started["run_id"]

    follower_started = time.time()
    follower = subprocess.Popen(
        cli_command(engine, "logs", run_id, "--follow", "--json", jobs_dir=FIXTURE_JOBS),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_environment(),
    )
    printed: list[dict[str, Any]] = []

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            printed.append(json.loads(line))

    reader = threading.Thread(target=read, name="logs-follow-reader", daemon=True)
    reader.start()
    try:

        def error_line() -> dict[str, Any] | Pending:
            errors = [line for line in printed if line["exception"]]
            return errors[0] if errors else Pending(printed)

        line = poll(
            error_line,
            fail_if=lambda: follower.poll() is not None and f"exited {follower.returncode}",
            what=f"logs --follow prints run {run_id}'s failed item",
            timeout=DEADLINE_SECONDS,
            interval=0.2,
        )
        assert line["run_id"] == run_id
        assert f"latefail-{ITEM_SECONDS} fails on purpose" in line["exception"]
        logged = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()
        assert logged > follower_started  # logged after the follower started, and it saw it

        # The run ends with its only item failed; --follow ends with it, by itself.
        assert follower.wait(timeout=DEADLINE_SECONDS) == 0
        reader.join(timeout=DEADLINE_SECONDS)
        status = cli_json(engine, "status", run_id)["run"]["status"]
        assert status == "FAILED"
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(timeout=DEADLINE_SECONDS)
        assert follower.stderr is not None
        stderr = follower.stderr.read()
        follower.stderr.close()
    assert "Traceback" not in stderr
