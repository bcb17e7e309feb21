"""The engine's background deliveries drop what they expect to fail, logged, and nothing else."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stepburst_local.moto_internals import JsonRESTError
from stepburst_local.patches import events
from stepburst_local.schedules import EngineClock, ScheduleFirer

pytestmark = pytest.mark.engine

SCHEDULE = {
    "Name": "nightly",
    "GroupName": "default",
    "Target": {
        "Arn": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
        "Input": "{}",
        "RetryPolicy": {"MaximumRetryAttempts": 0},
    },
}


class Scheduler:
    def get_schedule(self, Name: str, GroupName: str) -> dict[str, Any]:  # noqa: N803
        return SCHEDULE


class StepFunctions:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def start_execution(self, **kwargs: Any) -> None:
        raise self.error


def firer(error: Exception) -> ScheduleFirer:
    clients = {"scheduler": Scheduler(), "stepfunctions": StepFunctions(error)}
    return ScheduleFirer(clients.__getitem__, clock=EngineClock(start=datetime.now(UTC)))


def test_a_schedule_whose_target_refuses_the_start_records_it_dropped() -> None:
    refused = ClientError(
        {"Error": {"Code": "StateMachineDoesNotExist", "Message": "gone"}}, "StartExecution"
    )

    delivery = firer(refused).fire("nightly", "default", datetime.now(UTC))

    assert delivery.outcome == "dropped"
    assert "StateMachineDoesNotExist" in delivery.detail


def test_a_bug_in_starting_a_schedules_target_is_raised_not_recorded() -> None:
    with pytest.raises(KeyError):
        firer(KeyError("Arn")).fire("nightly", "default", datetime.now(UTC))


class Target:
    """A rule's target delivery that fails as ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __call__(self, target: dict[str, Any], event: dict[str, Any]) -> None:
        raise self.error


class AnyEvent:
    def matches_event(self, event: dict[str, Any]) -> bool:
        return True


class StatesRule:
    state = "ENABLED"
    event_pattern = AnyEvent()
    targets = ({"Arn": "arn:aws:states:us-east-1:123456789012:stateMachine:m"},)


def deliver_to_rule(error: Exception) -> None:
    def moto_delivery(rule: Any, event: dict[str, Any], transform_input: bool) -> None:
        raise AssertionError("no target is moto's to deliver")

    events._send_own_targets(
        moto_delivery, StatesRule(), {"source": "aws.s3"}, False, ":states:", Target(error)
    )


@pytest.mark.parametrize(
    "error", [JsonRESTError("StateMachineDoesNotExist", "gone"), ValueError("not JSON")]
)
def test_a_target_that_refuses_an_event_is_logged_and_the_event_dropped(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=events.__name__):
        deliver_to_rule(error)

    assert "could not deliver to arn:aws:states" in caplog.text
    assert type(error).__name__ in caplog.text


def test_a_bug_in_delivering_an_event_is_raised() -> None:
    with pytest.raises(AttributeError):
        deliver_to_rule(AttributeError("moto changed"))
