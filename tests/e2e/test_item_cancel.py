"""``stepburst cancel RUN --item NAME`` on the local engine: one item stops, the others go on,
the run ends telling so, and ``redrive`` runs the cancelled item again."""

from __future__ import annotations

from typing import Any

import pytest
from tests.e2e import test_cli
from tests.e2e.test_cli import DEADLINE_SECONDS, Session
from tests.polling import Pending, ended_execution, failed_execution, poll

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The CLI tests' engine and jobs, started once for this module.
session = test_cli.session


def items_by_name(session: Session, run_id: str) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in session.json("items", run_id)["items"]}


def test_one_cancelled_item_stops_alone_and_a_redrive_runs_it(session: Session) -> None:
    started = session.json(
        "start", "scenario-ecs", "--items", "sleep-15,sleep-4,sleep-5", "--apply"
    )
    run_id, arn = started["run_id"], started["execution_arn"]

    def running() -> bool | Pending:
        statuses = {name: item["status"] for name, item in items_by_name(session, run_id).items()}
        return statuses.get("sleep-15") == "RUNNING" or Pending(statuses)

    poll(
        running,
        fail_if=lambda: ended_execution(session.engine.describe_execution(arn)),
        what=f"run {run_id}'s sleep-15 item starts",
        timeout=DEADLINE_SECONDS,
        interval=0.2,
    )
    cancelled = session.json("cancel", run_id, "--item", "sleep-15")
    assert cancelled["stopped"] == {"executions": 0, "ecs_tasks": 1, "batch_jobs": 0}
    (item,) = cancelled["items"]
    assert (item["name"], item["route"], item["was"], item["status"]) == (
        "sleep-15",
        "ecs",
        "RUNNING",
        "CANCELLED",
    )
    assert len(item["stopped"]) == 1

    status = session.wait_for_run(run_id)
    assert status["status"] == "FAILED", status
    assert status["items"] == {"SUCCEEDED": 2, "CANCELLED": 1}
    run = status["run"]
    assert (run["succeeded"], run["failed"], run["cancelled"]) == (2, 0, 1)
    assert "1 of 3 items cancelled by the user" in run["cause"]
    described = session.engine.describe_execution(arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "Stepburst.RunFailed"

    items = items_by_name(session, run_id)
    stopped = items["sleep-15"]
    assert stopped["status"] == "CANCELLED"
    assert stopped["cancelled_by"]
    assert stopped["cancelled_at"]
    assert stopped["error"] == "Stepburst.ItemCancelled"
    # Cancelled, not retried: one attempt, recorded as cancelled.
    assert stopped["attempts"] == 1
    assert [attempt["class"] for attempt in stopped["history"]] == ["cancelled"]
    for name in ("sleep-4", "sleep-5"):
        other = items[name]
        assert other["status"] == "SUCCEEDED", other
        assert other["attempts"] == 1
        assert other["result"]["item"] == name

    # The run has ended: another item cancel is refused, naming why.
    _, refused = session.cli("cancel", run_id, "--item", "sleep-4", check=2)
    assert "already ended FAILED" in refused
    assert "Traceback" not in refused

    redriven = session.json("redrive", run_id)
    poll(
        lambda: session.ledger_run(run_id).get("redrives") == 1,
        fail_if=lambda: failed_execution(
            session.engine.describe_execution(redriven["execution_arn"])
        ),
        what=f"run {run_id} records its redrive",
        timeout=DEADLINE_SECONDS,
        interval=0.2,
    )
    status = session.wait_for_run(run_id)
    assert status["status"] == "SUCCEEDED", status
    assert status["run"]["cancelled"] == 0
    again = items_by_name(session, run_id)
    assert again["sleep-15"]["status"] == "SUCCEEDED"
    assert again["sleep-15"]["attempts"] == 2
    assert again["sleep-15"]["result"]["item"] == "sleep-15"
    assert again["sleep-4"]["attempts"] == 1


def test_an_item_on_lambda_or_unknown_is_refused_naming_why(session: Session) -> None:
    started = session.json("start", "scenario-lambda", "--items", "sleep-20,ok-1", "--apply")
    run_id = started["run_id"]

    _, unknown = session.cli("cancel", run_id, "--item", "ok-1,nope", check=2)
    assert "has no item 'nope'" in unknown
    _, on_lambda = session.cli("cancel", run_id, "--item", "sleep-20", check=2)
    assert "lambda route" in on_lambda
    assert "Traceback" not in on_lambda + unknown
    # Nothing was cancelled: the run ends as it would have.
    assert session.wait_for_run(run_id)["status"] == "SUCCEEDED"
