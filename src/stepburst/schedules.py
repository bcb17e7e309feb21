"""Keep EventBridge Scheduler in step with the job files: one schedule per scheduled job.

Run on every deploy by a CloudFormation custom resource (and by the local engine when it
starts), so adding, changing or deleting a job file is all it takes. Schedules live in the
stack's own group; any schedule there that no job declares is deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from stepburst import aws
from stepburst.jobs import Job, JobCatalog
from stepburst.observability import logger
from stepburst.triggers import SCHEDULE_SOURCE

SCHEDULE_PREFIX = "job-"
# Scheduler fills this in with the invocation's time, so each day's run has its own identity.
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


@dataclass(frozen=True, slots=True)
class Target:
    state_machine_arn: str
    role_arn: str
    group: str


@dataclass(slots=True)
class SyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, str]:
        """As CloudFormation takes custom resource data: flat strings."""
        return {
            "Created": ",".join(self.created),
            "Updated": ",".join(self.updated),
            "Deleted": ",".join(self.deleted),
        }


def schedule_name(job: Job) -> str:
    return SCHEDULE_PREFIX + job.name


def schedule_request(job: Job, target: Target) -> dict[str, Any]:
    """CreateSchedule/UpdateSchedule arguments for a job's schedule."""
    schedule = job.triggers.schedule
    assert schedule is not None
    document = {
        "source": SCHEDULE_SOURCE,
        "job": job.name,
        "scheduled_time": SCHEDULED_TIME,
        "input": schedule.input,
    }
    return {
        "Name": schedule_name(job),
        "GroupName": target.group,
        "ScheduleExpression": schedule.expression,
        "ScheduleExpressionTimezone": schedule.timezone,
        "State": "ENABLED" if schedule.enabled else "DISABLED",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Description": f"stepburst job {job.name}"[:512],
        "Target": {
            "Arn": target.state_machine_arn,
            "RoleArn": target.role_arn,
            "Input": json.dumps(document),
            "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
        },
    }


def _existing(group: str) -> Iterator[str]:
    paginator = aws.client("scheduler").get_paginator("list_schedules")
    for page in paginator.paginate(GroupName=group, NamePrefix=SCHEDULE_PREFIX):
        for schedule in page["Schedules"]:
            yield str(schedule["Name"])


def sync(catalog: JobCatalog, target: Target) -> SyncResult:
    scheduler = aws.client("scheduler")
    wanted = {schedule_name(job): job for job in catalog if job.triggers.schedule is not None}
    present = set(_existing(target.group))
    result = SyncResult()
    for name, job in sorted(wanted.items()):
        request = schedule_request(job, target)
        if name in present:
            scheduler.update_schedule(**request)
            result.updated.append(name)
        else:
            scheduler.create_schedule(**request)
            result.created.append(name)
    for name in sorted(present - set(wanted)):
        scheduler.delete_schedule(Name=name, GroupName=target.group)
        result.deleted.append(name)
    logger.info("schedules in sync", extra=result.as_dict())
    return result


def remove_all(group: str) -> SyncResult:
    scheduler = aws.client("scheduler")
    result = SyncResult()
    for name in sorted(_existing(group)):
        scheduler.delete_schedule(Name=name, GroupName=group)
        result.deleted.append(name)
    return result
