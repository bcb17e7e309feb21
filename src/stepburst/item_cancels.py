"""Cancel single items of a running run: ``stepburst cancel RUN --item NAME``.

What happens to an item asked for, by where it is:

- on Lambda (its unit's route, or the route its last attempt ran on): refused. A Lambda unit's
  items share one invocation, which cannot be stopped alone; cancel the run instead.
- not started yet (no record, or ``RETRYING`` between attempts): its record is marked
  ``CANCELLED`` and the worker skips it when its unit starts.
- running in a container: marked ``CANCELLED``, and its unit's ECS task or Batch job is stopped
  with a reason that starts with :data:`~stepburst.failures.ITEM_CANCEL_REASON`. RecoverUnit
  reads that reason: the cancelled items stay ``CANCELLED`` (no retry); a unit that also holds
  other unfinished items (a Lambda unit that continued on a container) runs again at once,
  skipping what succeeded or was cancelled; a unit left with nothing to do ends as cancelled,
  not as a failure, so the run's other units go on.

Each request (item, manifest, who, when) is also kept on the run record (``cancelled_items``),
which no worker writes: a worker that starts the unit just as the cancel comes may rewrite the
item's record, never the request. A request holds for its manifest only, so ``redrive`` runs a
cancelled item again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stepburst.adapters import batch, ecs
from stepburst.errors import InvalidInputError
from stepburst.failures import ITEM_CANCEL_REASON, ITEM_CANCELLED_ERROR, FailureClass
from stepburst.layout import ecs_started_by, is_batch_job_of_unit
from stepburst.ledger import Ledger, now_iso
from stepburst.manifest_stream import PlannedItem, PlannedUnit, iter_units
from stepburst.statuses import ItemStatus, RunStatus

# The run record's list of item cancel requests.
REQUESTS_FIELD = "cancelled_items"
# ECS StopTask takes a reason of up to 255 characters (Batch's TerminateJob, 1024).
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html
STOP_REASON_LIMIT = 255
_ENDED = frozenset({ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.CANCELLED})
_RECORD_KEYS = frozenset({"pk", "run_id", "expires_at"})


def requested_cancels(run: Mapping[str, Any], manifest: int) -> dict[int, dict[str, Any]]:
    """The run's item cancel requests for one manifest, by item index."""
    requests = run.get(REQUESTS_FIELD) or []
    return {
        int(request["item"]): dict(request)
        for request in requests
        if isinstance(request, Mapping) and int(request.get("manifest", -1)) == manifest
    }


def cancelled_fields(request: Mapping[str, Any]) -> dict[str, Any]:
    """What a cancelled item's record says: who cancelled it, when, and in which manifest."""
    by, at = str(request["by"]), str(request["at"])
    return {
        "status": ItemStatus.CANCELLED,
        "error": ITEM_CANCELLED_ERROR,
        "cause": f"cancelled by the user {by} at {at}",
        "failure_class": FailureClass.CANCELLED.value,
        "cancelled_by": by,
        "cancelled_at": at,
        "cancel_manifest": int(request["manifest"]),
        "finished_at": at,
    }


def skipped_by_cancel(record: Mapping[str, Any] | None, manifest: int) -> bool:
    """Whether a unit of ``manifest`` skips this item: a user cancelled it in that manifest
    (a whole-run cancel, or one in an earlier manifest, leaves it to run on a redrive)."""
    return (
        record is not None
        and record.get("status") == ItemStatus.CANCELLED
        and record.get("cancel_manifest") == manifest
    )


@dataclass(frozen=True, slots=True)
class CancelledItem:
    """One item a cancel asked for, and what was done."""

    name: str
    item: int
    unit: int
    route: str
    was: str
    status: str
    stopped: list[str]

    def to_document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "item": self.item,
            "unit": self.unit,
            "route": self.route,
            "was": self.was,
            "status": self.status,
            "stopped": self.stopped,
        }


@dataclass(frozen=True, slots=True)
class _Found:
    name: str
    unit: PlannedUnit
    item: PlannedItem
    record: dict[str, Any] | None

    @property
    def route(self) -> str:
        # The route the item's latest attempt ran on: a Lambda unit may continue on a container.
        return str((self.record or {}).get("route") or self.unit.route)

    @property
    def status(self) -> str:
        return str((self.record or {}).get("status") or "PENDING")


def _find(units: Iterable[PlannedUnit], wanted: list[str]) -> dict[str, tuple[PlannedUnit, Any]]:
    """The unit and item of each wanted name: a work item's name, ``#index`` or the index."""
    by_value: dict[str, tuple[PlannedUnit, PlannedItem]] = {}
    by_index: dict[int, tuple[PlannedUnit, PlannedItem]] = {}
    for unit in units:
        for item in unit.items:
            if item.value is not None:
                by_value.setdefault(item.value, (unit, item))
            by_index[item.index] = (unit, item)
    found: dict[str, tuple[PlannedUnit, Any]] = {}
    for name in wanted:
        if name in by_value:
            found[name] = by_value[name]
            continue
        number = name.removeprefix("#")
        if number.isdigit() and int(number) in by_index:
            found[name] = by_index[int(number)]
    return found


class ItemCanceller:
    """Cancels items of one stack's runs; ``who`` names the user (the caller's ARN)."""

    def __init__(
        self,
        ledger: Ledger,
        work_bucket: str,
        outputs: Mapping[str, str],
        who: Callable[[], str],
    ) -> None:
        self.ledger = ledger
        self.work_bucket = work_bucket
        self.outputs = outputs
        self.who = who

    def cancel(self, run: Mapping[str, Any], names: list[str]) -> list[CancelledItem]:
        """Cancel the named items of a running run; every name is checked before any change."""
        run_id = str(run["run_id"])
        manifest = int(run.get("redrives") or 0)
        located = _find(iter_units(self.work_bucket, str(run["manifest_key"])), names)
        unknown = [name for name in names if name not in located]
        if unknown:
            raise InvalidInputError(
                "--item", f"run {run_id!r} has no item {', '.join(map(repr, unknown))}"
            )
        records = self.ledger.get_items(run_id, (item.sk for _, item in located.values()))
        found = [
            _Found(name, unit, item, records.get(item.sk)) for name, (unit, item) in located.items()
        ]
        for each in found:
            if each.route == "lambda":
                raise InvalidInputError(
                    "--item",
                    f"item {each.name!r} runs on the lambda route, whose units cannot be stopped "
                    f"one item at a time: cancel the run (stepburst cancel {run_id})",
                )
            if each.status in _ENDED:
                raise InvalidInputError(
                    "--item", f"item {each.name!r} already ended {each.status}: nothing to cancel"
                )
        by, at = self.who(), now_iso()
        requests = [
            {"item": each.item.index, "manifest": manifest, "by": by, "at": at} for each in found
        ]
        if not self.ledger.request_item_cancels(run_id, requests, running=RunStatus.RUNNING):
            raise InvalidInputError("run", f"run {run_id!r} is not running: nothing to cancel")
        marked = {
            each.name: self._mark(run_id, each, request)
            for each, request in zip(found, requests, strict=True)
        }
        reason = f"{ITEM_CANCEL_REASON} {by}: " + ", ".join(names)
        reason = reason[:STOP_REASON_LIMIT]
        stopped: dict[int, list[str]] = {}
        for each in found:
            if marked[each.name] and each.unit.index not in stopped:
                stopped[each.unit.index] = self._stop_unit(run_id, each, reason)
        return [
            CancelledItem(
                name=each.name,
                item=each.item.index,
                unit=each.unit.index,
                route=each.route,
                was=each.status,
                status=ItemStatus.CANCELLED if marked[each.name] else self._now(run_id, each),
                stopped=stopped.get(each.unit.index, []) if marked[each.name] else [],
            )
            for each in found
        ]

    def _mark(self, run_id: str, each: _Found, request: Mapping[str, Any]) -> bool:
        previous = {k: v for k, v in (each.record or {}).items() if k not in _RECORD_KEYS}
        record = {
            **previous,
            "sk": each.item.sk,
            "item": each.item.index,
            "unit": each.unit.index,
            "value": each.item.value,
            "route": each.route,
            "estimated_seconds": each.item.estimated_seconds,
            **cancelled_fields(request),
        }
        return self.ledger.cancel_item(run_id, record)

    def _now(self, run_id: str, each: _Found) -> str:
        record = self.ledger.get_items(run_id, [each.item.sk]).get(each.item.sk) or {}
        return str(record.get("status") or "PENDING")

    def _stop_unit(self, run_id: str, each: _Found, reason: str) -> list[str]:
        """Stop the container that runs the item's unit, if one does (an item not started
        yet has none: its unit skips it)."""
        placement = (each.record or {}).get("placement") or {}
        if each.route == "batch":
            running = each.status == ItemStatus.RUNNING
            return self._terminate_batch(
                run_id, each.unit.index, placement, reason, running=running
            )
        return self._stop_ecs(run_id, each.unit.index, placement, reason)

    def _stop_ecs(
        self, run_id: str, unit: int, placement: Mapping[str, Any], reason: str
    ) -> list[str]:
        cluster = self.outputs.get("ClusterArn")
        if not cluster:
            return []
        running = ecs.running_tasks(cluster, started_by=ecs_started_by(run_id))
        # The placement names the task when the worker could read its metadata; the command
        # the state machine gave finds it otherwise (and a task that started meanwhile).
        tasks = set(ecs.tasks_running_command(cluster, running, ["--unit", str(unit)]))
        if placement.get("task_arn") in running:
            tasks.add(str(placement["task_arn"]))
        for arn in sorted(tasks):
            ecs.stop_task(cluster, arn, reason=reason)
        return sorted(tasks)

    def _terminate_batch(
        self, run_id: str, unit: int, placement: Mapping[str, Any], reason: str, *, running: bool
    ) -> list[str]:
        listed = self.outputs.get("WorkerJobQueueArns") or self.outputs.get("WorkerJobQueueArn")
        queues = [queue for queue in (listed or "").split(",") if queue]
        jobs = {
            job_id
            for queue in queues
            for job_id in batch.unfinished_jobs(
                queue, named=lambda name: is_batch_job_of_unit(name, run_id, unit)
            )
        }
        if running and placement.get("batch_job_id"):
            jobs.add(str(placement["batch_job_id"]))
        for job_id in sorted(jobs):
            batch.terminate_job(job_id, reason=reason)
        return sorted(jobs)
