"""The tally that decides a run's outcome from its item digests, without AWS."""

from __future__ import annotations

from typing import Any

import pytest

from stepburst.statuses import ItemStatus, RunStatus
from stepburst.tally import COUNTED, NAMED_FAILURES, tally_run

pytestmark = pytest.mark.unit


def succeeded(index: int, route: str = "lambda", **figures: int) -> dict[str, Any]:
    return {"item": index, "status": ItemStatus.SUCCEEDED, "route": route, **figures}


def failed(index: int, route: str = "ecs", **details: Any) -> dict[str, Any]:
    return {"item": index, "status": ItemStatus.FAILED, "route": route, **details}


def test_a_run_whose_items_all_succeed_succeeds() -> None:
    tally = tally_run(
        [succeeded(0, lines=3, records=2, rejects=1), succeeded(1, lines=4, records=4)],
        planned=2,
        tolerated_failure_percent=0,
    )
    assert tally.status == RunStatus.SUCCEEDED
    assert tally.cause is None
    assert (tally.succeeded, tally.failed, tally.unfinished) == (2, 0, 0)
    assert tally.totals == dict.fromkeys(COUNTED, 0) | {"lines": 7, "records": 6, "rejects": 1}


def test_failures_within_the_budget_succeed_and_over_it_fail() -> None:
    items = [succeeded(index) for index in range(9)] + [failed(9, error="CommandFailedError")]
    within = tally_run(items, planned=10, tolerated_failure_percent=10)
    over = tally_run(items, planned=10, tolerated_failure_percent=9.5)
    assert within.status == RunStatus.SUCCEEDED
    assert over.status == RunStatus.FAILED
    assert within.failed_percent == over.failed_percent == 10.0
    assert over.cause is not None
    assert over.cause.startswith("1 of 10 items failed (10.0% > tolerated 9.5%): item 9 ")


def test_planned_items_without_a_record_count_as_failed() -> None:
    tally = tally_run([succeeded(0)], planned=4, tolerated_failure_percent=50)
    assert (tally.failed, tally.unfinished) == (3, 3)
    assert tally.status == RunStatus.FAILED
    assert tally.cause == "3 of 4 items failed (75.0% > tolerated 50%); 3 items never finished"


def test_the_cause_names_the_first_failures_and_counts_the_rest() -> None:
    items = [failed(index, error="CommandFailedError", reason="x" * 500) for index in range(25)]
    tally = tally_run(items, planned=25, tolerated_failure_percent=0)
    assert tally.cause is not None
    assert tally.cause.count("item ") == NAMED_FAILURES
    assert tally.cause.endswith(f" and {25 - NAMED_FAILURES} more")
    # Each reason is cut short in the cause, kept whole in failed_items.
    assert "x" * 121 not in tally.cause
    assert tally.failed_items[0]["reason"] == "x" * 500


def test_failed_items_keep_what_a_user_needs_to_see_why() -> None:
    digest = failed(3, route="batch", error="Stepburst.ContainerExitCode", exit_code=137)
    (item,) = tally_run([digest], planned=1, tolerated_failure_percent=0).failed_items
    assert item == {
        "item": 3,
        "route": "batch",
        "error": "Stepburst.ContainerExitCode",
        "exit_code": 137,
        "reason": "failed",
    }


def test_items_are_counted_by_route_and_status() -> None:
    items = [
        succeeded(0),
        succeeded(1),
        failed(2, route="lambda"),
        {"item": 3, "status": ItemStatus.CANCELLED, "route": "ecs"},
    ]
    tally = tally_run(items, planned=4, tolerated_failure_percent=100)
    assert tally.routes == {"lambda": {"SUCCEEDED": 2, "FAILED": 1}, "ecs": {"CANCELLED": 1}}
    # A cancelled item neither succeeded nor failed: it is counted apart.
    assert (tally.succeeded, len(tally.failed_items), tally.unfinished) == (2, 1, 0)
    assert tally.cancelled == 1


def test_an_empty_run_succeeds() -> None:
    tally = tally_run([], planned=0, tolerated_failure_percent=0)
    assert tally.status == RunStatus.SUCCEEDED
    assert tally.failed_percent == 0.0


def test_the_summary_figures() -> None:
    tally = tally_run([succeeded(0, bytes_in=10)], planned=3, tolerated_failure_percent=70)
    counts = tally.counts()
    assert counts["planned_items"] == 3
    assert counts["failed"] == 2
    assert counts["failed_percent"] == 66.667
    assert counts["bytes_in"] == 10
    assert counts["routes"] == {"lambda": {"SUCCEEDED": 1}}
