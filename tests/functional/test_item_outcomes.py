"""Items' outcomes written a group at a time: never over a cancel, held only while quick."""

from __future__ import annotations

from typing import Any

import pytest

from stepburst import components
from stepburst.item_outcomes import HOLD_ITEMS, OutcomeWriter
from stepburst.layout import item_sort_key
from tests.polling import Pending, poll

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


def test_quick_outcomes_are_held_briefly_and_a_slow_items_at_once(cloud: Cloud) -> None:
    _running(4)
    writer = OutcomeWriter(components.ledger(), RUN, hold_seconds=60.0)

    writer.add(_succeeded(0), took_seconds=0.001)
    writer.add(_succeeded(1), took_seconds=0.001)
    held = _statuses()
    writer.add(_succeeded(2), took_seconds=60.0)  # a slow item: written at once, with the rest
    slow = _statuses()
    writer.add(_succeeded(3), took_seconds=0.001)
    writer.flush()

    assert held == dict.fromkeys(range(4), "RUNNING")
    assert slow == {**dict.fromkeys(range(3), "SUCCEEDED"), 3: "RUNNING"}
    assert _statuses() == dict.fromkeys(range(4), "SUCCEEDED")
    assert writer.cancelled == set()


def test_held_outcomes_are_written_on_time_while_the_next_item_runs(cloud: Cloud) -> None:
    _running(2)
    writer = OutcomeWriter(components.ledger(), RUN, hold_seconds=0.2)

    writer.add(_succeeded(0), took_seconds=0.001)
    # The unit is busy with its next item (or was cut short): nothing else calls the writer.
    written = poll(
        lambda: _statuses()[0] == "SUCCEEDED" or Pending(_statuses()),
        what="the held outcome written by its timer",
        timeout=30,
    )

    assert written is True
    assert _statuses()[1] == "RUNNING"
    writer.flush()  # nothing held: no write, no error


def test_a_full_group_is_written_without_waiting(cloud: Cloud) -> None:
    _running(HOLD_ITEMS + 1)
    writer = OutcomeWriter(components.ledger(), RUN, hold_seconds=60.0)
    components.ledger().put_items(RUN, [{"sk": item_sort_key(7), "item": 7, "status": "CANCELLED"}])

    for index in range(HOLD_ITEMS + 1):
        writer.add(_succeeded(index), took_seconds=0.0)
    statuses = _statuses()
    writer.flush()

    assert [i for i, status in statuses.items() if status == "RUNNING"] == [HOLD_ITEMS]
    assert statuses[7] == "CANCELLED"
    assert writer.cancelled == {item_sort_key(7)}
    assert _statuses()[HOLD_ITEMS] == "SUCCEEDED"
