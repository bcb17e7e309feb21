"""Keep EventBridge Scheduler in step with the job files: one schedule per scheduled job.

Run on every deploy by a CloudFormation custom resource (and by the local engine when it
starts), so adding, changing or deleting a job file is all it takes. Schedules live in the
stack's own group; any schedule there that no job declares is deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from stepburst.adapters import scheduler
from stepburst.adapters.scheduler import Schedule
from stepburst.jobs import Job, JobCatalog
from stepburst.observability import logger
from stepburst.triggers import SCHEDULE_SOURCE

SCHEDULE_PREFIX = "job-"
# Scheduler fills this in with the invocation's time, so each day's run has its own identity.
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
# Scheduler retries a start that fails (throttled, say) for up to an hour.
MAX_EVENT_AGE_SECONDS = 3600
MAX_RETRY_ATTEMPTS = 10


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


def schedule_document(job: Job, scheduled_time: str) -> dict[str, Any]:
    """The execution input a job's schedule sends for one scheduled time."""
    schedule = job.triggers.schedule
    assert schedule is not None
    return {
        "source": SCHEDULE_SOURCE,
        "job": job.name,
        "scheduled_time": scheduled_time,
        "input": schedule.input,
    }


def job_schedule(job: Job, target: Target) -> Schedule:
    """The Scheduler schedule of a job that declares one."""
    schedule = job.triggers.schedule
    assert schedule is not None
    return Schedule(
        name=schedule_name(job),
        group=target.group,
        expression=schedule.expression,
        timezone=schedule.timezone,
        enabled=schedule.enabled,
        description=f"stepburst job {job.name}"[:512],
        state_machine_arn=target.state_machine_arn,
        role_arn=target.role_arn,
        input=json.dumps(schedule_document(job, SCHEDULED_TIME)),
        max_event_age_seconds=MAX_EVENT_AGE_SECONDS,
        max_retry_attempts=MAX_RETRY_ATTEMPTS,
    )


def sync(catalog: JobCatalog, target: Target) -> SyncResult:
    wanted = {schedule_name(job): job for job in catalog if job.triggers.schedule is not None}
    present = set(scheduler.schedule_names(target.group, SCHEDULE_PREFIX))
    result = SyncResult()
    for name, job in sorted(wanted.items()):
        schedule = job_schedule(job, target)
        if name in present:
            scheduler.update_schedule(schedule)
            result.updated.append(name)
        else:
            scheduler.create_schedule(schedule)
            result.created.append(name)
    for name in sorted(present - set(wanted)):
        scheduler.delete_schedule(name, target.group)
        result.deleted.append(name)
    logger.info("schedules in sync", extra=result.as_dict())
    return result


def remove_all(group: str) -> SyncResult:
    result = SyncResult()
    for name in sorted(scheduler.schedule_names(group, SCHEDULE_PREFIX)):
        scheduler.delete_schedule(name, group)
        result.deleted.append(name)
    return result
