"""A run whose execution is stopped from the API or the console ends CANCELLED in the ledger.

No CLI is involved: the stop's "Step Functions Execution Status Change" event (ABORTED) reaches
the template's executions-ended rule, which invokes ReconcileFunction asynchronously, as on AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.polling import Pending, ended_execution, poll

from stepburst_local import LocalEngine

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_JOBS = ROOT / "tests" / "fixtures" / "jobs"


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(ROOT, jobs_dir=FIXTURE_JOBS, time_scale=0.01, quiet=True) as running:
        yield running


def test_a_run_stopped_from_the_api_ends_cancelled_with_the_stop_reason(
    engine: LocalEngine,
) -> None:
    runner = engine.runner
    assert runner is not None
    before = set(runner.runs)
    arn = engine.start_execution({"job": "scenario-ecs", "input": {"items": ["sleep-60"]}})
    poll(
        lambda: [r for r in set(runner.runs) - before if runner.runs[r].process is not None],
        fail_if=lambda: ended_execution(engine.describe_execution(arn)),
        what="the run's container starts",
        timeout=60,
        interval=0.05,
    )
    ledger = engine.ledger()
    link = ledger.execution_link(arn)
    assert link is not None
    run_id = str(link["run_id"])

    engine.client("stepfunctions").stop_execution(
        executionArn=arn, error="Operator.Stop", cause="stopped from the console"
    )

    assert engine.wait_for_execution(arn, timeout=30)["status"] == "ABORTED"

    def run_ended() -> dict[str, Any] | Pending:
        run = ledger.get_run(run_id) or {}
        return run if run.get("status") not in (None, "RUNNING") else Pending(run.get("status"))

    run = poll(run_ended, what=f"run {run_id} reconciled", timeout=30, interval=0.1)
    assert run["status"] == "CANCELLED"
    assert run["cause"] == "Operator.Stop: stopped from the console"
    assert engine.lambda_runtime.invocations["ReconcileFunction"] == 1
