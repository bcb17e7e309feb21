"""Fire the stack's EventBridge Scheduler schedules, as Scheduler does, on the engine's clock.

moto keeps schedules but never fires them. :class:`ScheduleFirer` reads the schedules the
deploy created (enabled ones only), works out their fire times with
:mod:`stepburst.jobs.schedule_times` (reached through :mod:`stepburst_local.product`: time zones
and DST as Scheduler reads them) and starts
each target the way Scheduler does: the target's input with ``<aws.scheduler.scheduled-time>``
filled in, somewhere inside a flexible time window when the schedule has one, and retried
with backoff while the start fails, within the target's retry policy (attempts and event
age), then sent to the target's dead-letter queue if it has one.
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-flexible-time-windows.html,
https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-retry-policy.html)

:class:`EngineClock` lets ``local up`` run a daily job now: it can start at a chosen instant
and run faster than real time.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stepburst_local.product import schedule_fire_times

LOG = logging.getLogger(__name__)

SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
# Scheduler's defaults when a target gives no retry policy (CreateSchedule's API reference).
DEFAULT_MAX_EVENT_AGE_SECONDS = 86_400
DEFAULT_MAX_RETRY_ATTEMPTS = 185
TICK_SECONDS = 0.2
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


class EngineClock:
    """Wall-clock time for schedules: real, or from ``start`` and ``speed`` times faster."""

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("the clock's speed must be positive")
        if start is not None and start.tzinfo is None:
            raise ValueError("the clock's start needs a time zone (e.g. ...Z or +00:00)")
        self.speed = speed
        self._start = start
        self._origin = datetime.now(UTC)
        self._started = time.monotonic()
        self.begin()

    def begin(self) -> None:
        """Set the clock to its start again (real time without one), e.g. once the stack is
        deployed and serving."""
        self._origin = (self._start or datetime.now(UTC)).astimezone(UTC)
        self._started = time.monotonic()

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=(time.monotonic() - self._started) * self.speed)

    def real_seconds(self, clock_seconds: float) -> float:
        return clock_seconds / self.speed


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to start a schedule's target, as the engine recorded it."""

    schedule: str
    scheduled_time: datetime
    attempt: int
    outcome: str  # "started", "failed", "dead-lettered", "dropped"
    detail: str = ""


@dataclass(slots=True)
class _Pending:
    schedule: dict[str, Any]
    scheduled_time: datetime
    due: datetime
    attempt: int = 1


@dataclass(slots=True)
class _Known:
    anchor: datetime
    checked: datetime


@dataclass
class ScheduleFirer:
    """Fires every enabled schedule of the engine's Scheduler at its time, in its own thread.

    ``client`` builds boto3 clients for the engine's endpoint (``LocalCloud.client``).
    """

    client: Callable[[str], Any]
    clock: EngineClock = field(default_factory=EngineClock)
    tick_seconds: float = TICK_SECONDS
    deliveries: list[Delivery] = field(default_factory=list)
    _known: dict[str, _Known] = field(default_factory=dict)
    _pending: list[_Pending] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _since: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._since = self.clock.now()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="schedule-firer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.tick()
            except (ClientError, BotoCoreError) as error:  # Scheduler did not answer the list
                LOG.warning("listing the schedules failed (%s); trying again next tick", error)
            except Exception:
                # This thread fires every schedule until the engine stops: a bug in one tick
                # is logged with its traceback rather than ending all firing silently.
                LOG.exception("firing schedules failed; trying again next tick")

    def tick(self) -> None:
        """Queue what fell due since the last tick, then deliver what is due now."""
        now = self.clock.now()
        for schedule in self._schedules():
            name = f"{schedule['GroupName']}/{schedule['Name']}"
            known = self._known.get(name)
            if known is None:
                # Seen for the first time: it fires from when the firer started (or its start
                # date), so a time that fell between then and this tick is not lost.
                start = schedule.get("StartDate")
                since = self._since or now
                anchor = start.astimezone(UTC) if isinstance(start, datetime) else since
                known = self._known[name] = _Known(anchor=anchor, checked=max(since, anchor))
            if schedule.get("State") != "ENABLED":
                known.checked = now
                continue
            for moment in schedule_fire_times(
                schedule["ScheduleExpression"],
                schedule.get("ScheduleExpressionTimezone") or "UTC",
                after=known.checked,
                until=now,
                anchor=known.anchor,
            ):
                with self._lock:
                    self._pending.append(
                        _Pending(schedule, moment, due=moment + _flexible_delay(schedule))
                    )
            known.checked = now
        self._deliver_due(now)

    def _schedules(self) -> list[dict[str, Any]]:
        scheduler = self.client("scheduler")
        found = []
        for page in scheduler.get_paginator("list_schedules").paginate():
            for summary in page["Schedules"]:
                found.append(
                    scheduler.get_schedule(Name=summary["Name"], GroupName=summary["GroupName"])
                )
        return found

    def fire(self, schedule_name: str, group: str, scheduled_time: datetime) -> Delivery:
        """Deliver one schedule's target now for ``scheduled_time`` (a duplicate delivery,
        as Scheduler's at-least-once delivery can make)."""
        schedule = self.client("scheduler").get_schedule(Name=schedule_name, GroupName=group)
        return self._attempt(_Pending(schedule, scheduled_time, due=self.clock.now()))

    def _deliver_due(self, now: datetime) -> None:
        with self._lock:
            due = [pending for pending in self._pending if pending.due <= now]
            self._pending = [pending for pending in self._pending if pending.due > now]
        for pending in sorted(due, key=lambda pending: pending.due):
            self._attempt(pending)

    def _attempt(self, pending: _Pending) -> Delivery:
        schedule = pending.schedule
        target = schedule["Target"]
        # The target's service refused the start, did not answer, or the target's input is not
        # JSON: retried within the retry policy, as Scheduler does; anything else propagates.
        try:
            self._start_target(target, pending.scheduled_time)
        except (ClientError, BotoCoreError, ValueError) as error:
            return self._failed(pending, f"{type(error).__name__}: {error}")
        return self._record(pending, "started")

    def _start_target(self, target: dict[str, Any], scheduled_time: datetime) -> None:
        stamp = scheduled_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        document = str(target.get("Input", "{}")).replace(SCHEDULED_TIME, stamp)
        json.loads(document)  # a target input that is not JSON fails here, as Scheduler's does
        self.client("stepfunctions").start_execution(stateMachineArn=target["Arn"], input=document)

    def _failed(self, pending: _Pending, detail: str) -> Delivery:
        policy = pending.schedule["Target"].get("RetryPolicy") or {}
        attempts = int(policy.get("MaximumRetryAttempts", DEFAULT_MAX_RETRY_ATTEMPTS))
        max_age = int(policy.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_SECONDS))
        backoff = min(FIRST_RETRY_SECONDS * 2 ** (pending.attempt - 1), MAX_RETRY_SECONDS)
        retry_at = self.clock.now() + timedelta(seconds=backoff)
        if pending.attempt <= attempts and retry_at - pending.scheduled_time <= timedelta(
            seconds=max_age
        ):
            delivery = self._record(pending, "failed", detail)
            with self._lock:
                self._pending.append(
                    _Pending(
                        pending.schedule,
                        pending.scheduled_time,
                        due=retry_at,
                        attempt=pending.attempt + 1,
                    )
                )
            return delivery
        dead_letter = (pending.schedule["Target"].get("DeadLetterConfig") or {}).get("Arn")
        if dead_letter:
            self._dead_letter(str(dead_letter), pending, detail)
            return self._record(pending, "dead-lettered", detail)
        return self._record(pending, "dropped", detail)

    def _dead_letter(self, queue_arn: str, pending: _Pending, detail: str) -> None:
        sqs = self.client("sqs")
        queue_url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(
                {
                    "schedule": pending.schedule["Name"],
                    "scheduled_time": pending.scheduled_time.isoformat(),
                    "error": detail,
                }
            ),
        )

    def _record(self, pending: _Pending, outcome: str, detail: str = "") -> Delivery:
        delivery = Delivery(
            schedule=str(pending.schedule["Name"]),
            scheduled_time=pending.scheduled_time,
            attempt=pending.attempt,
            outcome=outcome,
            detail=detail,
        )
        self.deliveries.append(delivery)
        LOG.info(
            "schedule %s for %s: %s %s",
            delivery.schedule,
            delivery.scheduled_time.isoformat(),
            outcome,
            detail,
        )
        return delivery


def _flexible_delay(schedule: dict[str, Any]) -> timedelta:
    """Where inside its flexible time window a schedule fires (none when the mode is OFF)."""
    window = schedule.get("FlexibleTimeWindow") or {}
    if window.get("Mode") != "FLEXIBLE":
        return timedelta(0)
    minutes = float(window.get("MaximumWindowInMinutes", 0))
    return timedelta(minutes=random.uniform(0, minutes))
