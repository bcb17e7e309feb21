"""Schedule expressions, checked field by field as EventBridge Scheduler reads them.

A job's schedule becomes an EventBridge Scheduler schedule on deploy. Checking it here makes a
bad expression fail ``stepburst jobs``, ``make test`` and the deploy's validation with the
field and its value named, instead of deploying, or failing later inside CloudFormation.

The rules follow "Schedule types in EventBridge Scheduler"
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html) and the cron and
rate references it shares with EventBridge
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html,
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rate-expressions.html):

- ``cron(minutes hours day-of-month month day-of-week year)``: six fields. Each is ``*``, a
  value, a range ``a-b`` or a list of those, optionally stepped (``*/15``, ``5/10``,
  ``10-50/10``; not in day-of-week). Month and day-of-week take names (``JAN``, ``MON``).
  Exactly one of day-of-month and day-of-week is ``?``. Day-of-month takes ``L`` (last day)
  and ``nW`` (weekday nearest day n); day-of-week takes ``L``, ``nL`` (last weekday n of the
  month) and ``n#k`` (k-th weekday n); each of these stands alone in its field.
- ``rate(value unit)``: a positive whole number and minute(s), hour(s) or day(s), singular
  for 1 and plural above.
- ``at(yyyy-mm-ddThh:mm:ss)``: one run, at a real date and time of the schedule's time zone.

Two choices are stricter than the references spell out: a range must not run backwards
(``22-2``; write ``22-23,0-2``), and a step is at most the field's largest value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
WEEKDAYS = {
    name: number
    for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)
}
RATE_UNITS = frozenset({"minute", "minutes", "hour", "hours", "day", "days"})
_EXPRESSION = re.compile(r"(cron|rate|at)\((.*)\)", re.DOTALL)
_DIGITS = re.compile(r"[0-9]+")
_POSITIVE = re.compile(r"[1-9][0-9]*")
_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")


class _FieldError(ValueError):
    """A problem with one element of a cron field; the caller names the field."""


@dataclass(frozen=True, slots=True)
class CronField:
    name: str
    low: int
    high: int
    max_step: int
    names: Mapping[str, int] = field(default_factory=dict)
    steps: bool = True
    any_day: bool = False  # takes '?'

    def value(self, text: str) -> int:
        if _DIGITS.fullmatch(text):
            number = int(text)
        elif text in self.names:
            number = self.names[text]
        elif self.names:
            first, *_, last = self.names
            raise _FieldError(f"{text!r} is not a number or a name ({first}-{last})")
        else:
            raise _FieldError(f"{text!r} is not a number")
        if not self.low <= number <= self.high:
            raise _FieldError(f"{number} is outside {self.low}-{self.high}")
        return number


MINUTES = CronField("minutes", 0, 59, max_step=59)
HOURS = CronField("hours", 0, 23, max_step=23)
DAY_OF_MONTH = CronField("day-of-month", 1, 31, max_step=31, any_day=True)
MONTH = CronField("month", 1, 12, max_step=12, names=MONTHS)
DAY_OF_WEEK = CronField("day-of-week", 1, 7, max_step=7, names=WEEKDAYS, steps=False, any_day=True)
YEAR = CronField("year", 1970, 2199, max_step=229)
CRON_FIELDS = (MINUTES, HOURS, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR)


def check_schedule_expression(expression: str) -> None:
    """Raise ``ValueError`` saying what is wrong unless Scheduler would take ``expression``."""
    match = _EXPRESSION.fullmatch(expression)
    if match is None:
        raise ValueError("give cron(...), rate(...) or at(...)")
    kind, body = match.groups()
    if kind == "cron":
        _check_cron(body)
    elif kind == "rate":
        _check_rate(body)
    else:
        _check_at(body)


def _check_cron(body: str) -> None:
    fields = body.split()
    if len(fields) != len(CRON_FIELDS):
        raise ValueError(
            "cron takes 6 fields (minutes hours day-of-month month day-of-week year), "
            f"not {len(fields)}: {body!r}"
        )
    for spec, text in zip(CRON_FIELDS, fields, strict=True):
        try:
            _check_field(spec, text)
        except _FieldError as error:
            raise ValueError(f"{spec.name} field {text!r}: {error}") from None
    day_of_month, day_of_week = fields[2], fields[4]
    if day_of_month == "?" and day_of_week == "?":
        raise ValueError("day-of-month and day-of-week are both '?': give one of them")
    if "?" not in (day_of_month, day_of_week):
        raise ValueError(
            f"one of day-of-month {day_of_month!r} and day-of-week {day_of_week!r} must be '?'"
        )


def _check_field(spec: CronField, text: str) -> None:
    if text == "?":
        if not spec.any_day:
            raise _FieldError("'?' is only for day-of-month or day-of-week")
        return
    elements = text.upper().split(",")
    for element in elements:
        if not element:
            raise _FieldError("an empty list element")
        _check_element(spec, element, alone=len(elements) == 1)


def _check_element(spec: CronField, element: str, *, alone: bool) -> None:
    if spec is DAY_OF_MONTH and (element == "L" or element.endswith("W")):
        if not alone:
            raise _FieldError(f"{element!r} stands alone in its field")
        if element != "L":
            spec.value(element[:-1])
        return
    if spec is DAY_OF_WEEK and ("#" in element or element.endswith("L")):
        if not alone:
            raise _FieldError(f"{element!r} stands alone in its field")
        day, hash_sign, nth = element.partition("#")
        if hash_sign:
            spec.value(day)
            if nth not in ("1", "2", "3", "4", "5"):
                raise _FieldError(f"'#{nth}': a month has a 1st to a 5th weekday")
        elif element != "L":
            spec.value(element[:-1])
        return
    if "?" in element:
        raise _FieldError("'?' stands alone in its field")
    base, slash, step = element.partition("/")
    if slash:
        if not spec.steps:
            raise _FieldError(f"no '/' steps in {spec.name}")
        if not _DIGITS.fullmatch(step) or not 1 <= int(step) <= spec.max_step:
            raise _FieldError(f"the step {step!r} is not from 1 to {spec.max_step}")
    if base == "*":
        return
    start, dash, end = base.partition("-")
    first = spec.value(start)
    if dash and spec.value(end) < first:
        two_ranges = f"{start}-{spec.high},{spec.low}-{end}"
        raise _FieldError(f"the range runs backwards; write it as two ranges: {two_ranges}")


def _check_rate(body: str) -> None:
    parts = body.split(" ")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"rate takes a value and a unit, as in rate(5 minutes), not {body!r}")
    value, unit = parts
    if not _POSITIVE.fullmatch(value):
        raise ValueError(f"the rate value {value!r} is not a positive whole number")
    if unit not in RATE_UNITS:
        raise ValueError(f"the rate unit {unit!r} is not minute(s), hour(s) or day(s)")
    singular = unit.rstrip("s")
    if int(value) == 1 and unit != singular:
        raise ValueError(f"a rate of 1 takes a singular unit: rate(1 {singular})")
    if int(value) > 1 and unit == singular:
        raise ValueError(f"a rate above 1 takes a plural unit: rate({value} {singular}s)")


def _check_at(body: str) -> None:
    if not _AT.fullmatch(body):
        raise ValueError(f"at(...) takes a date and time as yyyy-mm-ddThh:mm:ss, not {body!r}")
    try:
        datetime.strptime(body, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise ValueError(f"{body!r} is not a real date and time") from None
