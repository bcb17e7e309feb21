"""EventBridge Scheduler: list, create, update and delete the schedules of one group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stepburst import aws
from stepburst.adapters.translation import Codes, translated
from stepburst.errors import ResourceNotFoundError

if TYPE_CHECKING:
    from types_boto3_scheduler.type_defs import FlexibleTimeWindowTypeDef, TargetTypeDef

# https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html
_CODES: Codes = {"ResourceNotFoundException": ResourceNotFoundError}
# A schedule fires at its time exactly, not somewhere in a window after it.
_EXACT: FlexibleTimeWindowTypeDef = {"Mode": "OFF"}


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule that starts an execution of a state machine with a fixed input."""

    name: str
    group: str
    expression: str
    timezone: str
    enabled: bool
    description: str
    state_machine_arn: str
    role_arn: str
    input: str
    max_event_age_seconds: int
    max_retry_attempts: int

    def target(self) -> TargetTypeDef:
        return {
            "Arn": self.state_machine_arn,
            "RoleArn": self.role_arn,
            "Input": self.input,
            "RetryPolicy": {
                "MaximumEventAgeInSeconds": self.max_event_age_seconds,
                "MaximumRetryAttempts": self.max_retry_attempts,
            },
        }


def schedule_names(group: str, prefix: str) -> list[str]:
    """Names of the group's schedules that start with ``prefix``."""
    with translated(f"listing schedules {prefix}* of group {group}", _CODES):
        pages = (
            aws.client("scheduler")
            .get_paginator("list_schedules")
            .paginate(GroupName=group, NamePrefix=prefix)
        )
        return [schedule["Name"] for page in pages for schedule in page["Schedules"]]


def _settings(schedule: Schedule) -> dict[str, Any]:
    """Every setting of a schedule, as CreateSchedule and UpdateSchedule both take them."""
    return {
        "Name": schedule.name,
        "GroupName": schedule.group,
        "ScheduleExpression": schedule.expression,
        "ScheduleExpressionTimezone": schedule.timezone,
        "State": "ENABLED" if schedule.enabled else "DISABLED",
        "FlexibleTimeWindow": _EXACT,
        "Description": schedule.description,
        "Target": schedule.target(),
    }


def create_schedule(schedule: Schedule) -> None:
    with translated(f"creating schedule {schedule.name}", _CODES):
        aws.client("scheduler").create_schedule(**_settings(schedule))


def update_schedule(schedule: Schedule) -> None:
    """Replace every setting of an existing schedule (UpdateSchedule sets them all)."""
    with translated(f"updating schedule {schedule.name}", _CODES):
        aws.client("scheduler").update_schedule(**_settings(schedule))


def delete_schedule(name: str, group: str) -> None:
    with translated(f"deleting schedule {name}", _CODES):
        aws.client("scheduler").delete_schedule(Name=name, GroupName=group)
