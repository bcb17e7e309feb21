"""Every failure path ends in a terminal, truthful ledger: one scenario per fault class.

Each runs the deployed state machine on the local engine with a fault injected, and asserts the
execution's end, the run's end (the same), each item's status and the attempts the ledger kept,
and where it applies that a redrive then completes the run.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from scenario_support import LAMBDA_TIMEOUT_SECONDS, ROOT, run_job

from stepburst_local import LocalEngine

pytestmark = [pytest.mark.statemachine, pytest.mark.slow]

S3_EVENT = json.loads((ROOT / "events" / "s3-object-created.json").read_text())


def _classes(item: dict[str, Any]) -> list[str]:
    return [str(attempt.get("class")) for attempt in item.get("history") or []]


def _redrive(engine: LocalEngine, run_id: str) -> dict[str, Any]:
    arn = engine.start_execution({"redrive": run_id})
    return engine.wait_for_execution(arn, timeout=120)


# -- Plan ---------------------------------------------------------------------------------------


def _upload_event(engine: LocalEngine, key: str) -> dict[str, Any]:
    event = copy.deepcopy(S3_EVENT)
    event["detail"]["bucket"]["name"] = engine.outputs["InputBucketName"]
    event["detail"]["object"].update(key=key, size=4096, **{"version-id": "gone-version"})
    return event


def test_an_upload_whose_object_is_gone_fails_its_run_and_releases_its_claim(
    engine: LocalEngine,
) -> None:
    event = _upload_event(engine, "scenario-uploads/gone.jsonl")

    arn = engine.start_execution(event)
    execution = engine.wait_for_execution(arn, timeout=60)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "ObjectNotFoundError"
    ledger = engine.ledger()
    link = ledger.execution_link(arn)
    assert link is not None
    run = ledger.get_run(link["run_id"])
    assert run is not None
    assert run["status"] == "FAILED"
    assert "scenario-uploads/gone.jsonl" in run["cause"]
    claim = ledger.get_trigger(link["trigger_id"])
    assert claim is not None
    assert claim["status"] == "RELEASED"

    # The claim is free: a redelivery of the same event runs Plan again, not "AlreadyClaimed".
    again = engine.wait_for_execution(engine.start_execution(event), timeout=60)
    assert again["status"] == "FAILED"
    assert again["error"] == "ObjectNotFoundError"


def test_a_retried_plan_continues_its_own_claim(engine: LocalEngine) -> None:
    ledger = engine.ledger()

    assert ledger.claim_trigger("b/k#1", "run-1", {}, execution_id="exec-1")
    assert ledger.claim_trigger("b/k#1", "run-1", {}, execution_id="exec-1")
    assert not ledger.claim_trigger("b/k#1", "run-1", {}, execution_id="exec-2")
    assert ledger.release_trigger("b/k#1", "exec-1", "Plan failed")
    assert not ledger.release_trigger("b/k#1", "exec-2", "not its claim")
    assert ledger.claim_trigger("b/k#1", "run-1", {}, execution_id="exec-2")


# -- Lambda -------------------------------------------------------------------------------------


def test_exhausted_lambda_throttling_is_retried_on_its_own_bound(engine: LocalEngine) -> None:
    # Seven throttles: the task's own six retries, then RecoverUnit's infrastructure retry.
    engine.faults.lambda_throttle("ProcessItemsFunction", times=7)

    run = run_job(engine, "scenario-lambda-retries", ["ok-1"])

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert run.record["status"] == "SUCCEEDED"
    item = run.item(0)
    assert item["status"] == "SUCCEEDED"
    assert _classes(item) == ["infrastructure"]


def test_lambda_throttling_past_its_bound_fails_truthfully_and_redrive_completes(
    engine: LocalEngine,
) -> None:
    engine.faults.lambda_throttle("ProcessItemsFunction", times=100)

    run = run_job(engine, "scenario-lambda-retries", ["ok-1", "ok-2"])

    assert run.status == "FAILED"
    assert run.record["status"] == "FAILED"
    assert [item["status"] for item in run.items] == ["FAILED", "FAILED"]
    for item in run.items:
        assert item["failure_class"] == "infrastructure"
        assert item["error"] == "Lambda.TooManyRequestsException"
        assert _classes(item) == ["infrastructure", "infrastructure"]
    assert run.record["failed"] == 2

    engine.faults.clear()
    assert _redrive(engine, run.run_id)["status"] == "SUCCEEDED"
    redriven = engine.ledger()
    assert redriven.get_run(run.run_id)["status"] == "SUCCEEDED"
    assert {item["status"] for item in redriven.iter_items(run.run_id)} == {"SUCCEEDED"}


def test_an_application_failure_is_retried_the_jobs_retries(
    engine: LocalEngine, tmp_path: Path
) -> None:
    arn = engine.start_execution(
        {
            "job": "scenario-lambda-retries",
            "input": {"items": ["ok-0", "flaky-one"]},
            "params": {"MARKER_DIR": str(tmp_path)},
        }
    )
    execution = engine.wait_for_execution(arn, timeout=60)

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    run_id = engine.ledger().execution_link(arn)["run_id"]
    items = {int(i["item"]): i for i in engine.ledger().iter_items(run_id)}
    assert items[1]["status"] == "SUCCEEDED"
    assert _classes(items[1]) == ["application"]
    # The item that had succeeded was not run again.
    assert int(items[0]["attempts"]) == 1


def test_a_lambda_timeout_reroutes_and_skips_the_items_it_finished(engine: LocalEngine) -> None:
    run = run_job(
        engine, "scenario-lambda-retries", ["ok-1", f"sleep-{LAMBDA_TIMEOUT_SECONDS + 1}"]
    )

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert run.record["status"] == "SUCCEEDED"
    finished, rerouted = run.item(0), run.item(1)
    assert (finished["route"], int(finished["attempts"])) == ("lambda", 1)
    assert rerouted["route"] == "ecs"
    assert _classes(rerouted) == ["timeout"]


# -- containers ---------------------------------------------------------------------------------


def test_a_non_zero_exit_is_retried_then_recorded_with_its_code(engine: LocalEngine) -> None:
    run = run_job(engine, "scenario-retries", ["ok-0", "exit-3"])

    assert run.status == "FAILED"
    assert run.record["status"] == "FAILED"
    assert run.item(0)["status"] == "SUCCEEDED"
    failed = run.item(1)
    assert failed["status"] == "FAILED"
    assert failed["exit_code"] == 3
    assert failed["failure_class"] == "application"
    assert _classes(failed) == ["application", "application"]  # retries: 1


def test_out_of_memory_retries_with_more_memory_up_to_the_cap(engine: LocalEngine) -> None:
    run = run_job(engine, "scenario-retries", ["exit-137"])

    assert run.status == "FAILED"
    assert run.record["status"] == "FAILED"
    failed = run.item(0)
    assert failed["failure_class"] == "out_of_memory"
    assert failed["exit_code"] == 137
    # 512 MB, then 1024, then 2048 (the job's cap), then no more.
    assert _classes(failed) == ["out_of_memory"] * 3
    assert "cap of 2048 MB" in failed["history"][-1]["decision"]


def test_exhausted_ecs_capacity_keeps_its_reason(engine: LocalEngine) -> None:
    engine.faults.ecs_capacity(reason="RESOURCE:MEMORY", times=1000)

    run = run_job(engine, "scenario-retries", ["ok-1"], timeout=120)

    assert run.status == "FAILED"
    assert run.record["status"] == "FAILED"
    failed = run.item(0)
    assert failed["status"] == "FAILED"
    assert failed["failure_class"] == "capacity", failed["history"]
    assert failed["cause"] == "RESOURCE:MEMORY"
    assert "RESOURCE:MEMORY" in run.record["cause"]
    engine.faults.clear()
    assert _redrive(engine, run.run_id)["status"] == "SUCCEEDED"


def test_spot_capacity_falls_back_to_on_demand(engine: LocalEngine) -> None:
    # Two rounds of the task's five retries fail; the third round runs on FARGATE.
    engine.faults.ecs_capacity(reason="RESOURCE:MEMORY", times=12)

    run = run_job(engine, "scenario-retries", ["ok-1"], timeout=120)

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    item = run.item(0)
    assert _classes(item) == ["capacity", "capacity"]
    strategies = _capacity_providers(engine, run.arn)
    assert strategies[0] == ["FARGATE_SPOT"]
    assert strategies[-1] == ["FARGATE"]


def _capacity_providers(engine: LocalEngine, arn: str) -> list[list[str]]:
    """The capacity providers each RunTask of the run asked for, in order."""
    asked = []
    for child in engine.map_run_children(arn):
        for event in child.history or []:
            details = event.get("taskScheduledEventDetails") or {}
            if details.get("resource") == "runTask.sync":
                parameters = json.loads(details["parameters"])
                strategy = parameters.get("CapacityProviderStrategy") or []
                asked.append([entry["CapacityProvider"] for entry in strategy])
    return asked


def test_a_spot_interruption_before_the_worker_started_is_retried_then_on_demand(
    engine: LocalEngine,
) -> None:
    # The unit's first two tasks are reclaimed before their container starts.
    engine.faults.ecs_spot_interruption(times=2)

    run = run_job(engine, "scenario-retries", ["ok-1"], timeout=120)

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert run.record["status"] == "SUCCEEDED"
    assert engine.faults.fired["ecs_spot_interruption"] == 2
    item = run.item(0)
    assert item["status"] == "SUCCEEDED"
    assert _classes(item) == ["spot_interruption", "spot_interruption"]
    assert item["history"][0]["stop_reason"] == "Your Spot Task was interrupted."
    assert "exit_code" not in item["history"][0]
    # After spot_fallback_after (2) losses, the third attempt ran on on-demand Fargate.
    assert _capacity_providers(engine, run.arn) == [["FARGATE_SPOT"], ["FARGATE_SPOT"], ["FARGATE"]]
