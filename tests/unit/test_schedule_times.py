"""When schedules fire: cron in its time zone across DST, rate as durations, at once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from stepburst.jobs.schedule_times import fire_times, fire_times_on, next_fire_time

pytestmark = pytest.mark.unit

LOS_ANGELES = "America/Los_Angeles"
DAILY_SIX = "cron(0 6 * * ? *)"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_daily_cron_keeps_its_local_hour_across_both_dst_changes() -> None:
    # 2026: clocks go forward on 8 March and back on 1 November in Los Angeles.
    spring = list(
        fire_times(DAILY_SIX, LOS_ANGELES, after=utc("2026-03-07"), until=utc("2026-03-10"))
    )
    assert spring == [utc("2026-03-07T14:00"), utc("2026-03-08T13:00"), utc("2026-03-09T13:00")]
    autumn = list(
        fire_times(DAILY_SIX, LOS_ANGELES, after=utc("2026-10-31"), until=utc("2026-11-03"))
    )
    assert autumn == [utc("2026-10-31T13:00"), utc("2026-11-01T14:00"), utc("2026-11-02T14:00")]


def test_a_time_inside_the_spring_forward_gap_is_skipped() -> None:
    times = list(
        fire_times(
            "cron(30 2 * * ? *)",
            LOS_ANGELES,
            after=utc("2026-03-07T00:00"),
            until=utc("2026-03-10T00:00"),
        )
    )
    # 02:30 on 8 March does not exist in Los Angeles.
    assert times == [utc("2026-03-07T10:30"), utc("2026-03-09T09:30")]


def test_a_time_the_fall_back_repeats_fires_once() -> None:
    times = list(
        fire_times(
            "cron(30 1 * * ? *)",
            LOS_ANGELES,
            after=utc("2026-11-01T00:00"),
            until=utc("2026-11-02T00:00"),
        )
    )
    # 01:30 happens at 08:30 UTC (PDT) and again at 09:30 UTC (PST): the first one only.
    assert times == [utc("2026-11-01T08:30")]


def test_rate_counts_fixed_durations_from_its_anchor() -> None:
    anchor = utc("2026-03-07T14:00")
    times = list(
        fire_times(
            "rate(1 day)",
            LOS_ANGELES,
            after=anchor,
            until=utc("2026-03-10T00:00"),
            anchor=anchor,
        )
    )
    assert times == [utc("2026-03-08T14:00"), utc("2026-03-09T14:00")]
    every_15 = list(
        fire_times(
            "rate(15 minutes)",
            "UTC",
            after=utc("2026-01-01T00:20"),
            until=utc("2026-01-01T01:00"),
            anchor=utc("2026-01-01T00:00"),
        )
    )
    assert every_15 == [utc("2026-01-01T00:30"), utc("2026-01-01T00:45"), utc("2026-01-01T01:00")]


def test_at_fires_once_in_its_zone() -> None:
    expression = "at(2026-12-24T18:00:00)"
    assert next_fire_time(expression, "Europe/Paris", after=utc("2026-12-01T00:00")) == utc(
        "2026-12-24T17:00"
    )
    assert next_fire_time(expression, "Europe/Paris", after=utc("2026-12-25T00:00")) is None


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # The last day of February in a leap year.
        ("cron(0 12 L * ? *)", "2028-02-01T00:00", "2028-02-29T12:00"),
        # The weekday nearest the 1st, when the 1st is a Saturday, is Monday the 3rd.
        ("cron(0 9 1W * ? *)", "2026-07-31T00:00", "2026-08-03T09:00"),
        # The weekday nearest the 15th, when the 15th is a Sunday, is Monday the 16th.
        ("cron(0 9 15W * ? *)", "2026-11-01T00:00", "2026-11-16T09:00"),
        # The second Tuesday.
        ("cron(0 9 ? * TUE#2 *)", "2026-12-01T00:00", "2026-12-08T09:00"),
        # The last Friday.
        ("cron(0 9 ? * 6L *)", "2026-12-01T00:00", "2026-12-25T09:00"),
        # Weekdays only, every 20 minutes from 10 past.
        ("cron(10/20 8 ? * MON-FRI *)", "2026-12-05T00:00", "2026-12-07T08:10"),
        # A year that is over never fires again.
        ("cron(0 0 1 1 ? 2020)", "2026-01-01T00:00", None),
    ],
)
def test_cron_day_rules(expression: str, after: str, expected: str | None) -> None:
    found = next_fire_time(expression, "UTC", after=utc(after))
    assert found == (utc(expected) if expected else None)


def test_the_fire_times_of_a_day_are_read_in_the_schedules_zone() -> None:
    # 06:00 Los Angeles on 8 March 2026 (the day the clocks go forward) is 13:00 UTC.
    assert fire_times_on(DAILY_SIX, LOS_ANGELES, date(2026, 3, 8)) == [utc("2026-03-08T13:00")]
    hourly = fire_times_on("cron(0 * * * ? *)", LOS_ANGELES, date(2026, 3, 8))
    assert len(hourly) == 23
    assert hourly[0] == utc("2026-03-08T08:00")
    assert len(fire_times_on("cron(0 * * * ? *)", LOS_ANGELES, date(2026, 11, 1))) == 24
    midnight = fire_times_on("cron(0 0 * * ? *)", "UTC", date(2026, 12, 1))
    assert midnight == [utc("2026-12-01T00:00")]
    assert fire_times_on(DAILY_SIX, LOS_ANGELES, date(2026, 12, 2))[0] - midnight[0] == timedelta(
        days=1, hours=14
    )
