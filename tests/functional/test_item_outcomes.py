"""Items' outcomes written a group at a time: never over a cancel, held only while quick."""

from __future__ import annotations

from typing import Any

import pytest

from stepburst import components
from stepburst.item_outcomes import HOLD_ITEMS, HOLD_SECONDS, OutcomeWriter
from stepburst.layout import item_sort_key

from .conftest import Cloud

pytestmark = pytest.mark.functional

RUN = "run-outcomes"


def _running(count: int) -> None:
    components.ledger().put_items(
        RUN, [{"sk": item_sort_key(i), "item": i, "status": "RUNNING"} for i in range(count)]
    )


def _succeeded(index: int) -> dict[str, Any]:
    return {"sk": item_sort_key(index), "item": index, "status": "SUCCEEDED", "result": index}


def _statuses() -> dict[int, str]:
    return {int(r["item"]): str(r["status"]) for r in components.ledger().iter_items(RUN)}


def test_outcomes_are_written_in_groups_except_over_a_cancel(cloud: Cloud) -> None:
    ledger = components.ledger()
    _running(150)  # two transactions: 100 and 50
    cancelled = [3, 99, 100, 149]
    ledger.put_items(
        RUN,
        [{"sk": item_sort_key(i), "item": i, "status": "CANCELLED"} for i in cancelled],
    )

    refused = ledger.finish_items(RUN, [_succeeded(i) for i in range(150)])

    assert refused == {item_sort_key(i) for i in cancelled}
    statuses = _statuses()
    assert {i for i, status in statuses.items() if status == "CANCELLED"} == set(cancelled)
    assert {i for i, status in statuses.items() if status == "SUCCEEDED"} == (
        set(range(150)) - set(cancelled)
    )
    records = {int(r["item"]): r for r in ledger.iter_items(RUN)}
    assert records[5]["result"] == 5
    assert records[5]["run_id"] == RUN
    assert "expires_at" in records[5]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_quick_outcomes_are_held_until_one_is_old_or_an_item_was_slow(cloud: Cloud) -> None:
    _running(6)
    clock = _Clock()
    writer = OutcomeWriter(components.ledger(), RUN, clock=clock)

    writer.add(_succeeded(0), took_seconds=0.001)
    writer.add(_succeeded(1), took_seconds=0.001)
    held = _statuses()
    clock.now += HOLD_SECONDS  # the first held outcome is now old enough
    writer.add(_succeeded(2), took_seconds=0.001)
    aged = _statuses()
    writer.add(_succeeded(3), took_seconds=0.001)
    writer.add(_succeeded(4), took_seconds=HOLD_SECONDS)  # a slow item: written at once
    slow = _statuses()
    writer.add(_succeeded(5), took_seconds=0.001)
    writer.flush()

    assert held == dict.fromkeys(range(6), "RUNNING")
    assert aged == {
        **dict.fromkeys(range(3), "SUCCEEDED"),
        3: "RUNNING",
        4: "RUNNING",
        5: "RUNNING",
    }
    assert slow == {**dict.fromkeys(range(5), "SUCCEEDED"), 5: "RUNNING"}
    assert _statuses() == dict.fromkeys(range(6), "SUCCEEDED")
    assert writer.cancelled == set()


def test_a_full_group_is_written_without_waiting(cloud: Cloud) -> None:
    _running(HOLD_ITEMS + 1)
    writer = OutcomeWriter(components.ledger(), RUN, clock=_Clock())
    components.ledger().put_items(RUN, [{"sk": item_sort_key(7), "item": 7, "status": "CANCELLED"}])

    for index in range(HOLD_ITEMS + 1):
        writer.add(_succeeded(index), took_seconds=0.0)

    statuses = _statuses()
    assert [i for i, status in statuses.items() if status == "RUNNING"] == [HOLD_ITEMS]
    assert statuses[7] == "CANCELLED"
    assert writer.cancelled == {item_sort_key(7)}
