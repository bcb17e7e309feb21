"""When a schedule fires: the times EventBridge Scheduler would invoke its target.

The local engine fires the job schedules with these, and ``stepburst schedule fire`` starts a
run for the scheduled time of a chosen day. The rules follow "Schedule types in EventBridge
Scheduler" (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html):

- cron and at expressions are read in the schedule's time zone. When the clocks go forward,
  a time that does not exist that day is skipped; when they go back, a time that happens
  twice fires once, at its first occurrence.
- rate expressions are fixed durations (a day is 24 hours, so a daily rate drifts by an hour
  on the local clock across a DST change), counted from the schedule's start.
- at(...) fires once.

Expressions are assumed valid (``check_schedule_expression`` runs on every job file).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from stepburst.jobs.schedule_expressions import (
    DAY_OF_MONTH,
    DAY_OF_WEEK,
    HOURS,
    MINUTES,
    MONTH,
    YEAR,
    CronField,
)

_RATE_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}
# A cron that can never fire again (cron(0 0 30 2 ? *), or a past year) stops the search.
_SEARCH_DAYS = 366 * 8


@dataclass(frozen=True, slots=True)
class _DayRule:
    """Which days of a month a day-of-month or day-of-week field takes."""

    field: CronField
    text: str

    def matches(self, day: date) -> bool:
        if self.text == "?":
            return True
        return any(self._element(element, day) for element in self.text.upper().split(","))

    def _element(self, element: str, day: date) -> bool:
        last_day = calendar.monthrange(day.year, day.month)[1]
        if self.field is DAY_OF_MONTH:
            if element == "L":
                return day.day == last_day
            if element.endswith("W"):
                return day == _nearest_weekday(day.year, day.month, int(element[:-1]))
            return day.day in _values(self.field, element)
        weekday = _cron_weekday(day)
        if element == "L":
            return weekday == 7
        if "#" in element:
            name, _, nth = element.partition("#")
            return weekday == self.field.value(name) and (day.day - 1) // 7 + 1 == int(nth)
        if element.endswith("L"):
            wanted = self.field.value(element[:-1])
            return weekday == wanted and day.day + 7 > last_day
        return weekday in _values(self.field, element)


def _cron_weekday(day: date) -> int:
    """1 is Sunday, 7 is Saturday, as cron's day-of-week counts."""
    return (day.isoweekday() % 7) + 1


def _nearest_weekday(year: int, month: int, wanted: int) -> date:
    """The weekday nearest day ``wanted`` of the month, never leaving the month."""
    last_day = calendar.monthrange(year, month)[1]
    target = date(year, month, min(wanted, last_day))
    if target.weekday() == 5:  # Saturday: Friday, unless that is in the month before
        return target - timedelta(days=1) if target.day > 1 else target + timedelta(days=2)
    if target.weekday() == 6:  # Sunday: Monday, unless that is in the month after
        return target + timedelta(days=1) if target.day < last_day else target - timedelta(days=2)
    return target


def _values(field: CronField, text: str) -> frozenset[int]:
    found: set[int] = set()
    for element in text.upper().split(","):
        base, slash, step_text = element.partition("/")
        step = int(step_text) if slash else 1
        if base == "*":
            first, last = field.low, field.high
        else:
            start, dash, end = base.partition("-")
            first = field.value(start)
            last = field.value(end) if dash else (field.high if slash else first)
        found.update(range(first, last + 1, step))
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: _DayRule
    months: frozenset[int]
    day_of_week: _DayRule
    years: frozenset[int]

    @classmethod
    def parse(cls, body: str) -> CronSchedule:
        minutes, hours, day_of_month, months, day_of_week, years = body.split()
        return cls(
            minutes=_values(MINUTES, minutes),
            hours=_values(HOURS, hours),
            day_of_month=_DayRule(DAY_OF_MONTH, day_of_month),
            months=_values(MONTH, months),
            day_of_week=_DayRule(DAY_OF_WEEK, day_of_week),
            years=_values(YEAR, years),
        )

    def takes(self, day: date) -> bool:
        return (
            day.year in self.years
            and day.month in self.months
            and self.day_of_month.matches(day)
            and self.day_of_week.matches(day)
        )

    def times_on(self, day: date, zone: ZoneInfo) -> Iterator[datetime]:
        """The day's fire times, in UTC and in order (skipped and repeated hours handled)."""
        if not self.takes(day):
            return
        for hour in sorted(self.hours):
            for minute in sorted(self.minutes):
                wall = datetime.combine(day, time(hour, minute), tzinfo=zone)
                if _exists(wall):
                    # fold=0: of a repeated wall time, the first occurrence.
                    yield wall.astimezone(UTC)


def _exists(wall: datetime) -> bool:
    """Whether a wall-clock time happens at all in its zone (not inside a spring-forward gap)."""
    round_trip = wall.astimezone(UTC).astimezone(wall.tzinfo)
    return round_trip.replace(tzinfo=None) == wall.replace(tzinfo=None)


def fire_times(
    expression: str,
    timezone: str,
    *,
    after: datetime,
    until: datetime,
    anchor: datetime | None = None,
) -> Iterator[datetime]:
    """Fire times in UTC with ``after < t <= until``, in order.

    ``anchor`` is when a rate schedule started counting (its start date, or when it was
    created); it defaults to ``after``.
    """
    kind, _, rest = expression.partition("(")
    body = rest[:-1]
    zone = ZoneInfo(timezone)
    if kind == "at":
        moment = datetime.fromisoformat(body).replace(tzinfo=zone)
        if _exists(moment) and after < moment.astimezone(UTC) <= until:
            yield moment.astimezone(UTC)
        return
    if kind == "rate":
        value, unit = body.split(" ")
        period = timedelta(seconds=int(value) * _RATE_SECONDS[unit.rstrip("s")])
        start = anchor or after
        elapsed = max(after - start, timedelta(0))
        moment = start + period * (elapsed // period + 1)
        while moment <= until:
            yield moment.astimezone(UTC)
            moment += period
        return
    cron = CronSchedule.parse(body)
    day = after.astimezone(zone).date()
    last_day = until.astimezone(zone).date()
    for _ in range(_SEARCH_DAYS):
        if day > last_day:
            return
        for moment in cron.times_on(day, zone):
            if after < moment <= until:
                yield moment
        day += timedelta(days=1)


def next_fire_time(
    expression: str, timezone: str, *, after: datetime, anchor: datetime | None = None
) -> datetime | None:
    """The first fire time after ``after``, or None when the schedule never fires again."""
    horizon = after + timedelta(days=_SEARCH_DAYS)
    return next(fire_times(expression, timezone, after=after, until=horizon, anchor=anchor), None)


def fire_times_on(expression: str, timezone: str, day: date) -> list[datetime]:
    """The fire times (UTC) that fall on ``day`` in the schedule's time zone.

    What ``stepburst schedule fire JOB --date DAY`` chooses from: the scheduled day is read in
    the schedule's zone, as the runs it starts read it.
    """
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone).astimezone(UTC)
    instant = timedelta(microseconds=1)
    return list(fire_times(expression, timezone, after=start - instant, until=end - instant))
