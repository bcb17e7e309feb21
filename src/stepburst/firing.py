"""Fire a job's schedule once, on demand, for a chosen scheduled time.

``stepburst schedule fire JOB --date DAY`` starts the execution the job's EventBridge Scheduler
schedule would have started for that day: the same input, with the scheduled time filled in.
The day is read in the schedule's time zone, as the run reads it. The execution's name is
derived from the job and the scheduled time, so firing the same time twice starts one
execution, and Plan's claim on the scheduled time makes a schedule's own delivery for that
time a duplicate too: one run per scheduled time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

from stepburst.errors import InvalidInputError
from stepburst.jobs import Job
from stepburst.jobs.schedule_times import fire_times_on
from stepburst.schedules import schedule_document

# Step Functions execution names: 1-80 characters.
_NAME_LIMIT = 80


@dataclass(frozen=True, slots=True)
class Firing:
    job: str
    scheduled_time: datetime
    execution_name: str
    document: dict[str, Any]


def scheduled_time_for(job: Job, day: date, at: clock_time | None = None) -> datetime:
    """The fire time (UTC) of ``job``'s schedule on ``day`` in the schedule's time zone.

    A schedule that fires more than once that day needs ``at`` (local time) to choose one.
    """
    schedule = job.triggers.schedule
    if schedule is None:
        raise InvalidInputError("job", f"job {job.name!r} has no schedule to fire")
    times = fire_times_on(schedule.expression, schedule.timezone, day)
    where = f"{schedule.expression} in {schedule.timezone}"
    if at is not None:
        chosen = [moment for moment in times if _local_time(moment, schedule.timezone) == at]
        if not chosen:
            local_times = (_local_time(moment, schedule.timezone) for moment in times)
            shown = ", ".join(local.isoformat() for local in local_times)
            raise InvalidInputError(
                "--at",
                f"{where} does not fire at {at.isoformat()} on {day} "
                f"(it fires at: {shown or 'no time that day'})",
            )
        return chosen[0]
    if not times:
        raise InvalidInputError("--date", f"{where} does not fire on {day}")
    if len(times) > 1:
        raise InvalidInputError(
            "--at",
            f"{where} fires {len(times)} times on {day}: choose one with --at HH:MM",
        )
    return times[0]


def _local_time(moment: datetime, timezone: str) -> clock_time:
    return moment.astimezone(ZoneInfo(timezone)).time().replace(tzinfo=None)


def firing(job: Job, scheduled_time: datetime) -> Firing:
    stamp = scheduled_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = f"schedule-{job.name}-{scheduled_time.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return Firing(
        job=job.name,
        scheduled_time=scheduled_time,
        execution_name=name[:_NAME_LIMIT],
        document=schedule_document(job, stamp),
    )
