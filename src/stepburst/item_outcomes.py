"""A unit's item outcomes, written to the ledger in groups while items are quick.

A unit of quick items (a function that takes milliseconds) spent most of its time writing one
conditional record per item. Outcomes are held and written together (one DynamoDB
transaction per group of up to 100, :meth:`stepburst.ledger.Ledger.finish_items`), for no
longer than :data:`HOLD_SECONDS`, whatever the unit does meanwhile:

- an item that took :data:`HOLD_SECONDS` or more is written at once, with everything held;
- held outcomes are written :data:`HOLD_SECONDS` after the first of them was held (by a timer,
  even while the next item runs), when :data:`HOLD_ITEMS` are held, and when the unit ends.

So a unit cut short (Lambda's timeout, a killed container) leaves SUCCEEDED every item that
finished more than :data:`HOLD_SECONDS` before, and every slow one; an item that ended in that
last moment runs again on the next attempt, as the item that was running does. Each item still
gets exactly one outcome, and a cancel that came first still wins: an item found CANCELLED when
its outcome is written keeps CANCELLED.
"""

from __future__ import annotations

import threading
from typing import Any

from stepburst.ledger import Ledger

HOLD_SECONDS = 0.5
HOLD_ITEMS = 100


class OutcomeWriter:
    """Holds finished items' records and writes them as the module says."""

    def __init__(self, ledger: Ledger, run_id: str, *, hold_seconds: float = HOLD_SECONDS) -> None:
        self._ledger = ledger
        self._run_id = run_id
        self._hold_seconds = hold_seconds
        self._held: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._failure: Exception | None = None
        self.cancelled: set[str] = set()
        """Sort keys of the items found cancelled when their outcome was written."""

    def add(self, record: dict[str, Any], *, took_seconds: float) -> None:
        """Hold one finished item's record; write what is held if it is time to."""
        with self._lock:
            self._raise_timer_failure()
            self._held.append(record)
            if took_seconds >= self._hold_seconds or len(self._held) >= HOLD_ITEMS:
                self._write_held()
            elif self._timer is None:
                self._timer = threading.Timer(self._hold_seconds, self._write_on_time)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Write everything held now (the unit ends); a failed timed write is raised here."""
        with self._lock:
            self._raise_timer_failure()
            self._write_held()

    def _write_on_time(self) -> None:
        with self._lock:
            self._timer = None
            try:
                self._write_held()
            except Exception as exc:  # raised in the unit's own thread, by add or flush
                self._failure = exc

    def _write_held(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._held:
            held, self._held = self._held, []
            self.cancelled |= self._ledger.finish_items(self._run_id, held)

    def _raise_timer_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
