"""Runs whose execution ended outside Finalize, and items only the state machine recorded."""

from __future__ import annotations

from typing import Any

import pytest

from stepburst import components, storage, units

from .conftest import Cloud
from .handlers import invoke
from .test_coordinator import EXECUTION, plan_payload, sample_lines, upload

pytestmark = pytest.mark.functional


def _status_change(execution_arn: str, status: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6f1b7c9e-0000-0000-0000-000000000000",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:coordinator",
            "status": status,
            "error": "States.Aborted" if status == "ABORTED" else "States.Runtime",
            "cause": "stopped from the console",
        },
    }


def test_a_stopped_execution_cancels_its_run_and_unfinished_items(cloud: Cloud) -> None:
    event = upload(cloud, "incoming/yelp/stopped.jsonl", sample_lines(40))
    plan = invoke("plan", plan_payload(event, "stopped"))
    ledger = components.ledger()
    unit = storage.get_json(cloud.work_bucket, plan["manifest"]["key"])[0]
    ledger.put_items(
        plan["run_id"],
        [{"sk": unit["items"][0]["sk"], "item": 0, "status": "RUNNING", "route": "lambda"}],
    )

    reconciled = invoke("reconcile", _status_change(EXECUTION + "stopped", "ABORTED"))

    assert reconciled == {"run_id": plan["run_id"], "status": "CANCELLED", "released_claim": False}
    run = ledger.get_run(plan["run_id"])
    assert run is not None
    assert run["status"] == "CANCELLED"
    assert "stopped from the console" in run["cause"]
    (item,) = ledger.iter_items(plan["run_id"])
    assert item["status"] == "CANCELLED"

    # A second delivery of the event changes nothing.
    again = invoke("reconcile", _status_change(EXECUTION + "stopped", "ABORTED"))
    assert again["status"] == "CANCELLED"


def test_a_finished_run_is_left_as_finalize_recorded_it(cloud: Cloud) -> None:
    event = upload(cloud, "incoming/yelp/finished.jsonl", sample_lines(10))
    plan = invoke("plan", plan_payload(event, "finished"))
    ledger = components.ledger()
    ledger.update_run(plan["run_id"], {"status": "SUCCEEDED"})

    reconciled = invoke("reconcile", _status_change(EXECUTION + "finished", "FAILED"))

    assert reconciled["status"] == "SUCCEEDED"
    run = ledger.get_run(plan["run_id"])
    assert run is not None
    assert run["status"] == "SUCCEEDED"


def test_an_execution_the_ledger_does_not_know_is_ignored(cloud: Cloud) -> None:
    assert invoke("reconcile", _status_change(EXECUTION + "unknown", "FAILED")) == {
        "run_id": None,
        "status": None,
        "released_claim": False,
    }


def test_finalize_counts_an_item_only_the_state_machine_recorded(cloud: Cloud) -> None:
    # The state machine's last-resort path marks an item FAILED before any worker wrote it:
    # the record has a status and a failure, and no item number.
    event = upload(cloud, "incoming/yelp/unreported.jsonl", sample_lines(10))
    plan = invoke("plan", plan_payload(event, "unreported"))
    unit = storage.get_json(cloud.work_bucket, plan["manifest"]["key"])[0]
    components.ledger().put_items(
        plan["run_id"],
        [{"sk": unit["items"][0]["sk"], "status": "FAILED", "error": "Lambda.TooManyRequests"}],
    )

    outcome = invoke(
        "finalize",
        {"plan": plan, "fanout": {}, "execution_id": EXECUTION + "unreported"},
    )

    assert outcome["status"] == "FAILED"
    run = components.ledger().get_run(plan["run_id"])
    assert run is not None
    assert run["status"] == "FAILED"
    assert run["failed"] == 1


def test_a_late_worker_never_turns_a_cancelled_item_back(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = upload(cloud, "incoming/yelp/late.jsonl", sample_lines(20))
    plan = invoke("plan", plan_payload(event, "late"))
    unit = storage.get_json(cloud.work_bucket, plan["manifest"]["key"])[0]
    ledger = components.ledger()
    process_range = units.process_jsonl_range_on_cpus

    def cancelled_while_running(*args: Any, **kwargs: Any) -> Any:
        # `stepburst cancel` lands while the item runs: it marks the running item CANCELLED.
        (record,) = [r for r in ledger.iter_items(plan["run_id"]) if r["status"] == "RUNNING"]
        ledger.put_items(plan["run_id"], [{**record, "status": "CANCELLED"}])
        return process_range(*args, **kwargs)

    monkeypatch.setattr(units, "process_jsonl_range_on_cpus", cancelled_while_running)

    invoke(
        "process_items",
        {
            "run_id": plan["run_id"],
            "job": plan["job"],
            "unit": unit,
            "attempt": 1,
            "route": "lambda",
        },
    )

    (item,) = ledger.iter_items(plan["run_id"])
    assert item["status"] == "CANCELLED"
