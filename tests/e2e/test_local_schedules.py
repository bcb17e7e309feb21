"""The engine fires the deployed job schedules at their time in their zone, as Scheduler does.

The ZTF job fires daily at 06:00 Los Angeles time. On an accelerated clock started just before
the spring DST change, its two firings land at 14:00 UTC (PST) and then 13:00 UTC (PDT); a
second delivery of one scheduled time, and a firing of the same time by hand, give one run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.cli_runner import run_cli
from tests.polling import Pending, poll

from stepburst.jobs import JobCatalog
from stepburst.planning import schedule_run_id
from stepburst_local import LocalEngine
from stepburst_local.schedules import EngineClock, ScheduleFirer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ZTF = "ztf-alerts-daily"
GROUP_PREFIX = "job-"


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(ROOT, time_scale=0.01, quiet=True) as running:
        yield running


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _ztf_schedule(engine: LocalEngine) -> dict[str, Any]:
    scheduler = engine.client("scheduler")
    names = [
        summary
        for summary in scheduler.list_schedules()["Schedules"]
        if summary["Name"] == GROUP_PREFIX + ZTF
    ]
    assert len(names) == 1, names
    return dict(names[0])


def _run_of(engine: LocalEngine, scheduled: datetime) -> dict[str, Any]:
    job = JobCatalog.from_directory(ROOT / "jobs").get(ZTF)
    run_id = schedule_run_id(job, scheduled)

    def planned() -> dict[str, Any] | Pending:
        run = engine.ledger().get_run(run_id)
        return run if run is not None else Pending(f"no run {run_id} yet")

    return poll(planned, what=f"the run of {scheduled}", timeout=60, interval=0.1)


def test_the_ztf_schedule_fires_at_six_in_los_angeles_across_the_dst_change(
    engine: LocalEngine,
) -> None:
    # 05:59 PST on 7 March 2026; the clocks go forward at 02:00 on 8 March.
    clock = EngineClock(start=utc("2026-03-07T13:59:00"), speed=20_000)
    firer = ScheduleFirer(engine.client, clock=clock, tick_seconds=0.05)
    firer.start()
    try:
        poll(
            lambda: (
                len([d for d in firer.deliveries if d.outcome == "started"]) >= 2
                or Pending([d.scheduled_time for d in firer.deliveries])
            ),
            what="two daily firings",
            timeout=30,
            interval=0.05,
        )
    finally:
        firer.stop()
    started = [d for d in firer.deliveries if d.outcome == "started" and d.schedule.endswith(ZTF)]
    assert [d.scheduled_time for d in started[:2]] == [
        utc("2026-03-07T14:00:00"),
        utc("2026-03-08T13:00:00"),
    ]
    for delivery, day in zip(started[:2], ("20260307", "20260308"), strict=True):
        run = _run_of(engine, delivery.scheduled_time)
        assert run["job"] == ZTF
        assert run["trigger"]["type"] == "schedule"
        assert datetime.fromisoformat(run["trigger"]["scheduled_time"]) == delivery.scheduled_time
        assert run["planned_items"] == 1
        # The item is the scheduled day in Los Angeles (its download fails: no network here).
        ended = _ended(engine, run["run_id"])
        assert [item["value"] for item in engine.ledger().iter_items(ended["run_id"])] == [day]


def _ended(engine: LocalEngine, run_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | Pending:
        run = engine.ledger().get_run(run_id) or {}
        return run if run.get("status") not in (None, "RUNNING") else Pending(run.get("status"))

    return poll(finished, what=f"run {run_id} ends", timeout=120, interval=0.2)


def test_two_deliveries_and_a_firing_by_hand_of_one_time_give_one_run(
    engine: LocalEngine,
) -> None:
    scheduled = utc("2026-11-01T14:00:00")  # 06:00 PST, the day the clocks go back
    schedule = _ztf_schedule(engine)
    firer = ScheduleFirer(engine.client, clock=EngineClock(start=scheduled))
    first = firer.fire(schedule["Name"], schedule["GroupName"], scheduled)
    second = firer.fire(schedule["Name"], schedule["GroupName"], scheduled)
    assert (first.outcome, second.outcome) == ("started", "started")
    run = _run_of(engine, scheduled)

    def executions_done() -> list[dict[str, Any]] | Pending:
        found = [
            execution
            for execution in engine.iter_executions(engine.state_machine_arn)
            if scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")
            in engine.client("stepfunctions").describe_execution(
                executionArn=execution["executionArn"]
            )["input"]
        ]
        ended = [e for e in found if e["status"] != "RUNNING"]
        return found if len(found) == 2 and ended else Pending(len(found))

    poll(executions_done, what="both deliveries' executions", timeout=60, interval=0.1)
    runs = [r for r in engine.ledger().list_runs(ZTF, limit=50) if r["run_id"] == run["run_id"]]
    assert len(runs) == 1
    assert date.fromisoformat(run["trigger"]["scheduled_time"][:10]) == date(2026, 11, 1)


def test_schedule_fire_starts_the_scheduled_days_run_once(engine: LocalEngine) -> None:
    first = run_cli(engine, "schedule", "fire", ZTF, "--date", "2026-07-04", "--json")
    assert first.returncode == 0, first.stderr
    again = run_cli(engine, "schedule", "fire", ZTF, "--date", "20260704", "--json")
    assert again.returncode == 0, again.stderr
    fired, refired = json.loads(first.stdout), json.loads(again.stdout)
    assert fired["run_id"] == refired["run_id"]
    # The same execution (still running: StartExecution is idempotent for the same name and
    # input) or none (ended: its name is taken).
    assert refired["execution_arn"] in (fired["execution_arn"], None)
    # 06:00 in Los Angeles in July is 13:00 UTC.
    run = _run_of(engine, utc("2026-07-04T13:00:00"))
    assert run["run_id"] == fired["run_id"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("yelp-business-scores", "--date", "2026-07-04"), "has no schedule"),
        ((ZTF, "--date", "July 4th"), "--date: 'July 4th' is not a date"),
        ((ZTF, "--date", "2026-07-04", "--at", "07:00"), "does not fire at 07:00"),
    ],
)
def test_schedule_fire_refuses_what_it_cannot_fire(
    engine: LocalEngine, argv: tuple[str, ...], message: str
) -> None:
    refused = run_cli(engine, "schedule", "fire", *argv)
    assert refused.returncode == 2
    assert message in refused.stderr
    assert "Traceback" not in refused.stderr
