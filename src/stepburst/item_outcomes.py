"""A unit's item outcomes, written to the ledger in groups while items are quick.

A unit of quick items (a function that takes milliseconds) spent most of its time writing one
conditional record per item. Outcomes are held and written together (one DynamoDB
transaction per group of up to 100, :meth:`stepburst.ledger.Ledger.finish_items`) as long as
that loses little if the unit is cut short (Lambda's timeout, a killed container):

- an item that took :data:`HOLD_SECONDS` or more is written at once, with everything held;
- held outcomes are written once the oldest of them is :data:`HOLD_SECONDS` old, or when
  :data:`HOLD_ITEMS` are held, and when the unit ends.

So a unit cut short leaves SUCCEEDED every finished item but those of its last
:data:`HOLD_SECONDS`, which are all quick; the next attempt runs them again, as it runs the item
that was running. Each item still gets exactly one outcome, and a cancel that came first
still wins: an item found CANCELLED when its outcome is written keeps CANCELLED.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from stepburst.ledger import Ledger

HOLD_SECONDS = 0.5
HOLD_ITEMS = 100


class OutcomeWriter:
    """Holds finished items' records and writes them as the module says."""

    def __init__(
        self, ledger: Ledger, run_id: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ledger = ledger
        self._run_id = run_id
        self._clock = clock
        self._held: list[dict[str, Any]] = []
        self._oldest = 0.0
        self.cancelled: set[str] = set()
        """Sort keys of the items found cancelled when their outcome was written."""

    def add(self, record: dict[str, Any], *, took_seconds: float) -> None:
        """Hold one finished item's record; write what is held if it is time to."""
        now = self._clock()
        if not self._held:
            self._oldest = now
        self._held.append(record)
        if (
            took_seconds >= HOLD_SECONDS
            or now - self._oldest >= HOLD_SECONDS
            or len(self._held) >= HOLD_ITEMS
        ):
            self.flush()

    def flush(self) -> None:
        if self._held:
            held, self._held = self._held, []
            self.cancelled |= self._ledger.finish_items(self._run_id, held)
