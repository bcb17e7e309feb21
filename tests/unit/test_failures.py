"""The failure policy: each route's report classified, and the decision by class."""

from __future__ import annotations

import json
import random

import pytest

from stepburst.failures import (
    Attempts,
    Decision,
    FailureClass,
    RetryPolicy,
    classify_batch,
    classify_ecs,
    classify_lambda,
    decide,
)
from stepburst.recovery import fargate_size

pytestmark = pytest.mark.unit

POLICY = RetryPolicy(
    application_retries=2, infrastructure_attempts=4, memory_cap_mb=8192, spot_fallback_after=2
)


def _task(exit_code: int | None = None, **fields: str) -> dict[str, object]:
    container: dict[str, object] = {"Name": "worker"}
    if exit_code is not None:
        container["ExitCode"] = exit_code
    if "container_reason" in fields:
        container["Reason"] = fields.pop("container_reason")
    return {"TaskArn": "arn:aws:ecs:task/1", "Containers": [container], **fields}


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (_task(3, StopCode="EssentialContainerExited"), FailureClass.APPLICATION),
        (
            _task(137, container_reason="OutOfMemoryError: Container killed"),
            FailureClass.OUT_OF_MEMORY,
        ),
        (_task(137), FailureClass.OUT_OF_MEMORY),
        (
            _task(StopCode="SpotInterruption", StoppedReason="Your Spot Task was interrupted."),
            FailureClass.SPOT_INTERRUPTION,
        ),
        (
            _task(StopCode="TaskFailedToStart", StoppedReason="CannotPullContainerError: pull"),
            FailureClass.INFRASTRUCTURE,
        ),
        (_task(StoppedReason="Task stopped by user"), FailureClass.INFRASTRUCTURE),
    ],
    ids=["exit", "oom-reason", "exit-137", "spot", "image-pull", "no-exit-code"],
)
def test_ecs_tasks_are_classified_from_their_description(
    task: dict[str, object], expected: FailureClass
) -> None:
    assert classify_ecs(task).failure_class is expected


def test_ecs_capacity_keeps_its_reason() -> None:
    cause = json.dumps({"Failures": [{"Arn": "x", "Reason": "RESOURCE:MEMORY"}]})

    failure = classify_ecs(None, "AmazonECS.Unknown", cause)

    assert failure.failure_class is FailureClass.CAPACITY
    assert failure.cause == "RESOURCE:MEMORY"


def test_a_run_task_answer_without_a_task_is_capacity() -> None:
    answer = {"Tasks": [], "Failures": [{"Arn": "x", "Reason": "RESOURCE:CPU"}]}

    failure = classify_ecs(answer)

    assert failure.failure_class is FailureClass.CAPACITY
    assert failure.cause == "RESOURCE:CPU"


def test_batch_host_loss_and_exit_codes() -> None:
    lost = {"JobId": "j", "StatusReason": "Host EC2 (instance i-1) terminated.", "Container": {}}
    exited = {
        "JobId": "j",
        "StatusReason": "Essential container exited",
        "Container": {"ExitCode": 2},
    }

    assert classify_batch(lost).failure_class is FailureClass.SPOT_INTERRUPTION
    assert classify_batch(exited).failure_class is FailureClass.APPLICATION
    assert classify_batch(exited).exit_code == 2
    assert classify_batch(None, "States.Timeout").failure_class is FailureClass.TIMEOUT


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("Lambda.TooManyRequestsException", FailureClass.INFRASTRUCTURE),
        ("Sandbox.Timedout", FailureClass.TIMEOUT),
        ("ItemsFailedError", FailureClass.APPLICATION),
        ("ValueError", FailureClass.APPLICATION),
        ("ThrottledError", FailureClass.INFRASTRUCTURE),
    ],
)
def test_lambda_errors_are_classified_by_name(error: str, expected: FailureClass) -> None:
    cause = json.dumps({"errorMessage": "why", "errorType": error})
    assert classify_lambda(error, cause).failure_class is expected


def _decide(
    failure_class: FailureClass,
    *,
    attempts: Attempts | None = None,
    route: str = "ecs",
    memory: int = 2048,
    spot: bool = True,
) -> Decision:
    failure = classify_ecs(_task(1))
    failure = type(failure)(failure_class, "E", "cause")
    return decide(
        failure,
        route=route,
        fallback="ecs",
        attempts=attempts or Attempts(),
        policy=POLICY,
        memory_mb=memory,
        spot=spot,
        rng=random.Random(7),
    )


def test_application_failures_retry_the_jobs_retries_then_stop() -> None:
    attempts = Attempts()
    outcomes = []
    for _ in range(4):
        decision = _decide(FailureClass.APPLICATION, attempts=attempts)
        attempts = decision.attempts
        outcomes.append(decision.retry)

    assert outcomes == [True, True, False, False]


def test_infrastructure_failures_have_their_own_bound_apart_from_retries() -> None:
    attempts = Attempts({"application": 2})
    outcomes = []
    for _ in range(5):
        decision = _decide(FailureClass.INFRASTRUCTURE, attempts=attempts)
        attempts = decision.attempts
        outcomes.append(decision.retry)

    assert outcomes == [True, True, True, False, False]
    assert 0 <= decision.wait_seconds <= 300


def test_spot_capacity_falls_back_to_on_demand_after_repeated_failures() -> None:
    first = _decide(FailureClass.CAPACITY)
    second = _decide(FailureClass.CAPACITY, attempts=first.attempts)

    assert first.retry
    assert not first.on_demand
    assert second.retry
    assert second.on_demand
    assert not _decide(FailureClass.CAPACITY, attempts=first.attempts, spot=False).on_demand


def test_out_of_memory_retries_with_twice_the_memory_up_to_the_cap() -> None:
    grown = _decide(FailureClass.OUT_OF_MEMORY, memory=2048)
    capped = _decide(FailureClass.OUT_OF_MEMORY, memory=6144)
    at_cap = _decide(FailureClass.OUT_OF_MEMORY, memory=8192)

    assert (grown.retry, grown.memory_mb) == (True, 4096)
    assert (capped.retry, capped.memory_mb) == (True, 8192)
    assert not at_cap.retry
    assert "cap" in at_cap.reason


def test_lambda_timeouts_and_exhausted_throttling_move_to_a_container() -> None:
    timeout = _decide(FailureClass.TIMEOUT, route="lambda")
    container_timeout = _decide(FailureClass.TIMEOUT, route="ecs")

    assert (timeout.retry, timeout.route) == (True, "ecs")
    assert not container_timeout.retry


def test_cancelled_units_never_retry() -> None:
    assert not _decide(FailureClass.CANCELLED).retry


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        (256, 1024, (256, 1024)),
        (256, 4096, (512, 4096)),
        (1024, 9000, (2048, 9216)),
        (4096, 40000, (8192, 40960)),
        (16384, 200000, (16384, 122880)),
    ],
)
def test_memory_grows_into_a_valid_fargate_size(
    cpu: int, memory: int, expected: tuple[int, int]
) -> None:
    assert fargate_size(cpu, memory) == expected
