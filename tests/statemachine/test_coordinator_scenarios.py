"""The deployed state machine (statemachines/coordinator.asl.json) on the local engine.

One scenario per path: happy (Lambda and containers), retried infrastructure errors, a
container that exits non-zero, failures above the tolerated percentage, a Lambda item that hits
its timeout, stopping a run. Assertions read the ledger and the executions' histories.
"""

from __future__ import annotations

import pytest
from scenario_support import LAMBDA_TIMEOUT_SECONDS, child_events, failure_exit_code, run_job
from tests.polling import ended_execution, poll

from stepburst_local import LocalEngine

pytestmark = pytest.mark.statemachine


def test_happy_path_on_lambda(engine: LocalEngine) -> None:
    run = run_job(engine, "scenario-lambda", ["ok-1", "ok-2", "ok-3"])

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert run.record["status"] == "SUCCEEDED"
    assert [item["status"] for item in run.items] == ["SUCCEEDED"] * 3
    assert {item["route"] for item in run.items} == {"lambda"}
    for events in child_events(engine, run.arn):
        assert ("TaskSucceeded", None) in events


@pytest.mark.parametrize(("job", "route"), [("scenario-ecs", "ecs"), ("scenario-batch", "batch")])
def test_happy_path_on_containers(engine: LocalEngine, job: str, route: str) -> None:
    run = run_job(engine, job, ["ok-a", "ok-b"])

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert [item["status"] for item in run.items] == ["SUCCEEDED"] * 2
    assert {item["route"] for item in run.items} == {route}
    assert run.record["succeeded"] == 2


def test_transient_lambda_error_is_retried_then_succeeds(engine: LocalEngine) -> None:
    engine.faults.lambda_throttle("ProcessItemsFunction", times=2)

    run = run_job(engine, "scenario-lambda", ["ok-1"])

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert engine.faults.fired["lambda_throttle"] == 2
    (events,) = child_events(engine, run.arn)
    failures = [error for kind, error in events if kind == "TaskFailed"]
    assert failures == ["Lambda.TooManyRequestsException"] * 2
    assert events.count(("TaskSucceeded", None)) == 1
    assert run.item(0)["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("job", "code"), [("scenario-ecs", 7), ("scenario-batch", 9)], ids=["ecs", "batch"]
)
def test_container_exit_code_is_recorded_with_the_failed_item(
    engine: LocalEngine, job: str, code: int
) -> None:
    run = run_job(engine, job, ["ok-first", f"exit-{code}"])

    assert run.status == "FAILED"
    assert run.execution["error"] == "Stepburst.RunFailed"
    assert run.item(0)["status"] == "SUCCEEDED"
    failed = run.item(1)
    assert failed["status"] == "FAILED"
    assert failed["error"] == "Stepburst.ContainerExitCode"
    assert failure_exit_code(failed) == code
    assert run.record["failed"] == 1


def test_failures_above_the_tolerated_percentage_fail_the_run(engine: LocalEngine) -> None:
    names = [f"ok-{n}" for n in range(7)] + ["fail-7", "fail-8", "fail-9"]

    run = run_job(engine, "scenario-tolerant", names)

    assert run.status == "FAILED"
    assert run.execution["error"] == "Stepburst.RunFailed"
    cause = run.execution["cause"]
    assert "3 of 10 items failed" in cause
    for index in (7, 8, 9):
        assert f"item {index} " in cause
    assert [item["status"] for item in run.items].count("FAILED") == 3


def test_failures_within_the_tolerated_percentage_succeed(engine: LocalEngine) -> None:
    names = [f"ok-{n}" for n in range(8)] + ["fail-8", "fail-9"]

    run = run_job(engine, "scenario-tolerant", names)

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert run.record["failed"] == 2


def test_ecs_capacity_failure_is_retried_with_backoff(engine: LocalEngine) -> None:
    engine.faults.ecs_capacity(reason="RESOURCE:MEMORY", times=2)

    run = run_job(engine, "scenario-ecs", ["ok-1"])

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    (events,) = child_events(engine, run.arn)
    failures = [error for kind, error in events if kind == "TaskFailed"]
    assert failures == ["AmazonECS.Unknown"] * 2
    assert engine.faults.fired["ecs_capacity"] == 2


def test_lambda_item_that_hits_its_timeout_reruns_on_a_container(engine: LocalEngine) -> None:
    run = run_job(engine, "scenario-lambda", [f"sleep-{LAMBDA_TIMEOUT_SECONDS + 1}"])

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    (events,) = child_events(engine, run.arn)
    assert ("TaskFailed", "Sandbox.Timedout") in events
    entered = [kind for kind, _ in events]
    # RecoverUnit reroutes the unit, then the container succeeds.
    assert entered.count("TaskSucceeded") == 2
    item = run.item(0)
    assert item["status"] == "SUCCEEDED"
    assert item["route"] == "ecs"


def test_stopping_a_run_stops_its_containers(engine: LocalEngine) -> None:
    runner = engine.runner
    assert runner is not None
    before = set(runner.runs)
    arn = engine.start_execution({"job": "scenario-ecs", "input": {"items": ["sleep-60"]}})
    poll(
        lambda: [r for r in set(runner.runs) - before if runner.runs[r].process is not None],
        fail_if=lambda: ended_execution(engine.describe_execution(arn)),
        what="the run's container starts",
        timeout=30,
        interval=0.05,
    )
    (container,) = [runner.runs[r] for r in set(runner.runs) - before]

    engine.client("stepfunctions").stop_execution(executionArn=arn)

    assert engine.wait_for_execution(arn, timeout=20)["status"] == "ABORTED"
    assert container.done.wait(10), "the container is still running"
    assert container.stopped_by == "Execution stopped by user"
