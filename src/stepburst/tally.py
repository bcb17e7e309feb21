"""What a run's items add up to, and the verdict its job's failure budget gives: no AWS here.

Item counts decide, not the fan-out's own verdict: the Map counts failed units, and a unit of
many items fails when any one of them does. Planned items without a record (the fan-out
stopped early, a container never ran) count as failed. Items a user cancelled
(``stepburst cancel RUN --item``) are counted apart, as ``cancelled``, and spend the job's
failure budget like failed ones: the run did not do them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stepburst.statuses import CombineStatus, ItemStatus, RunStatus

# Figures summed over a run's items, as the workers record them.
COUNTED = ("lines", "records", "rejects", "filtered", "bytes_in", "bytes_out")
# A failed run's cause names this many failed items, then says how many more there are.
NAMED_FAILURES = 20
_REASON_IN_CAUSE = 120


@dataclass(frozen=True, slots=True)
class RunTally:
    planned: int
    succeeded: int
    failed_items: list[dict[str, Any]]
    tolerated_failure_percent: float
    totals: dict[str, int]
    routes: dict[str, dict[str, int]]
    cancelled_items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def unfinished(self) -> int:
        return self.planned - self.succeeded - len(self.failed_items) - self.cancelled

    @property
    def cancelled(self) -> int:
        return len(self.cancelled_items)

    @property
    def failed(self) -> int:
        """Items that failed, and planned items that never finished."""
        return len(self.failed_items) + self.unfinished

    @property
    def failed_percent(self) -> float:
        return 100.0 * self.failed / self.planned if self.planned else 0.0

    @property
    def not_done_percent(self) -> float:
        """Items failed, never finished or cancelled: what the failure budget is spent on."""
        return 100.0 * (self.failed + self.cancelled) / self.planned if self.planned else 0.0

    @property
    def status(self) -> RunStatus:
        if self.not_done_percent <= self.tolerated_failure_percent:
            return RunStatus.SUCCEEDED
        return RunStatus.FAILED

    @property
    def cause(self) -> str | None:
        """Why a failed run failed, naming its first failed items; None if it succeeded."""
        if self.status != RunStatus.FAILED:
            return None
        if not self.failed:
            return (
                f"{self.cancelled} of {self.planned} items cancelled by the user "
                f"({self.not_done_percent:.1f}% > tolerated {self.tolerated_failure_percent:g}%)"
                f": {self._cancelled_named()}"
            )
        cause = (
            f"{self.failed} of {self.planned} items failed ({self.failed_percent:.1f}% > "
            f"tolerated {self.tolerated_failure_percent:g}%)"
        )
        named = ", ".join(
            f"item {failure['item']} ({failure['error']}: "
            f"{str(failure['reason'])[:_REASON_IN_CAUSE]})"
            for failure in self.failed_items[:NAMED_FAILURES]
        )
        if named:
            more = len(self.failed_items) - NAMED_FAILURES
            cause += f": {named}" + (f" and {more} more" if more > 0 else "")
        if self.unfinished:
            cause += f"; {self.unfinished} items never finished"
        if self.cancelled:
            cause += f"; {self.cancelled} cancelled by the user: {self._cancelled_named()}"
        return cause

    def _cancelled_named(self) -> str:
        named = ", ".join(
            f"item {cancelled['item']} ({str(cancelled['reason'])[:_REASON_IN_CAUSE]})"
            for cancelled in self.cancelled_items[:NAMED_FAILURES]
        )
        more = self.cancelled - NAMED_FAILURES
        return named + (f" and {more} more" if more > 0 else "")

    def counts(self) -> dict[str, Any]:
        """The run summary's figures."""
        return {
            "planned_items": self.planned,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "unfinished": self.unfinished,
            "cancelled": self.cancelled,
            "failed_percent": round(self.failed_percent, 3),
            "tolerated_failure_percent": self.tolerated_failure_percent,
            "routes": self.routes,
            **self.totals,
        }


def _failed_item(digest: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "item": int(digest["item"]),
        "route": digest.get("route"),
        "error": digest.get("error"),
        "exit_code": digest.get("exit_code"),
        "reason": str(digest.get("reason") or "failed"),
    }


def tally_run(
    items: Iterable[Mapping[str, Any]], *, planned: int, tolerated_failure_percent: float
) -> RunTally:
    """Tally item digests (one per recorded item, in item order) against the planned count."""
    digests = list(items)
    routes: dict[str, dict[str, int]] = {}
    for digest in digests:
        by_status = routes.setdefault(str(digest.get("route", "unknown")), {})
        status = str(digest.get("status"))
        by_status[status] = by_status.get(status, 0) + 1
    return RunTally(
        planned=planned,
        succeeded=sum(1 for digest in digests if digest.get("status") == ItemStatus.SUCCEEDED),
        failed_items=[
            _failed_item(digest) for digest in digests if digest.get("status") == ItemStatus.FAILED
        ],
        tolerated_failure_percent=tolerated_failure_percent,
        cancelled_items=[
            _failed_item(digest)
            for digest in digests
            if digest.get("status") == ItemStatus.CANCELLED
        ],
        totals={name: sum(int(digest.get(name) or 0) for digest in digests) for name in COUNTED},
        routes=routes,
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """A run's outcome: its items' tally, then its combine step's, if the job has one."""

    status: RunStatus
    cause: str | None


def run_verdict(
    tally: RunTally, *, combine_status: str | None, combine_cause: str | None
) -> Verdict:
    """The items decide first; a combine step that ran and failed fails the run with its
    cause (the items keep their own states); a skipped one leaves the items' verdict."""
    if tally.status != RunStatus.SUCCEEDED:
        return Verdict(tally.status, tally.cause)
    if combine_status == CombineStatus.FAILED:
        return Verdict(RunStatus.FAILED, f"combine failed: {combine_cause or 'no cause given'}")
    return Verdict(RunStatus.SUCCEEDED, None)
