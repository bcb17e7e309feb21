"""Make the ledger tell the truth about executions that ended outside Finalize.

Two paths reach here:

- **Plan failed** (the state machine catches it): the trigger's claim, taken by this execution,
  is released so that a redelivery or a new start can run it, and the run is recorded FAILED
  with the cause (created if Plan failed before writing it).
- **The execution ended without Finalize** (an EventBridge rule on Step Functions' "Execution
  Status Change" events for FAILED, TIMED_OUT and ABORTED): a run still RUNNING becomes FAILED,
  or CANCELLED when the execution was stopped, and its unfinished items follow. This covers
  ``StopExecution`` from the API or the console and the execution's own time limit.

Both are idempotent: a run already in a terminal state is left as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stepburst.errors import StepburstError
from stepburst.ledger import Ledger, now_iso
from stepburst.observability import logger
from stepburst.planning import Planner, PlanRequest
from stepburst.statuses import ExecutionStatus, ItemStatus, RunStatus

_CAUSE_LIMIT = 4000
_UNFINISHED_ITEMS = frozenset({ItemStatus.RUNNING, ItemStatus.RETRYING})


@dataclass(frozen=True, slots=True)
class Reconciled:
    run_id: str | None
    status: str | None
    released_claim: bool = False

    def to_state(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "released_claim": self.released_claim,
        }


def _cause(error: str, cause: str) -> str:
    text = f"{error}: {cause}" if cause else error
    return text[:_CAUSE_LIMIT]


class RunReconciler:
    def __init__(self, planner: Planner, ledger: Ledger) -> None:
        self.planner = planner
        self.ledger = ledger

    def plan_failed(self, request: PlanRequest, error: str, cause: str) -> Reconciled:
        """Plan raised after its retries: free the claim and record the run as FAILED."""
        text = _cause(error, cause)
        try:
            target = self.planner.run_for(request)
        except StepburstError as unknown:
            # No job takes it (an unknown job, a start that is not valid): there is no run.
            logger.warning("plan failed before a run existed", extra={"error": str(unknown)})
            return Reconciled(run_id=None, status=None)
        if target is None:
            return Reconciled(run_id=None, status=None)
        released = False
        if target.claim is not None:
            released = self.ledger.release_trigger(target.claim, request.execution_id, text)
        run = self.ledger.get_run(target.run_id)
        if run is None and target.job is not None:
            self.ledger.create_run(
                {
                    "run_id": target.run_id,
                    "job": target.job,
                    "status": RunStatus.FAILED,
                    "trigger": request.trigger.describe(),
                    "execution_id": request.execution_id,
                    "started_at": request.started_at,
                    "finished_at": now_iso(),
                    "planned_items": 0,
                    "cause": text,
                }
            )
            status: str | None = RunStatus.FAILED
        elif run is not None and run.get("status") == RunStatus.RUNNING:
            self.ledger.update_run(
                target.run_id,
                {"status": RunStatus.FAILED, "cause": text, "finished_at": now_iso()},
            )
            status = RunStatus.FAILED
        else:
            status = None if run is None else str(run.get("status"))
        logger.info(
            "plan failed",
            extra={"run_id": target.run_id, "released_claim": released, "error": error},
        )
        return Reconciled(run_id=target.run_id, status=status, released_claim=released)

    def execution_ended(
        self, execution_arn: str, execution_status: str, error: str = "", cause: str = ""
    ) -> Reconciled:
        """An execution ended FAILED, TIMED_OUT or ABORTED: bring its run to the same end."""
        link = self.ledger.execution_link(execution_arn)
        if link is None:
            # Not a coordinator run (a Map child, an ignored upload, a duplicate delivery).
            return Reconciled(run_id=None, status=None)
        run_id = str(link["run_id"])
        final = (
            RunStatus.CANCELLED if execution_status == ExecutionStatus.ABORTED else RunStatus.FAILED
        )
        text = _cause(error or f"Execution {execution_status.lower()}", cause)
        run = self.ledger.get_run(run_id)
        released = False
        if run is None:
            claim = link.get("trigger_id")
            if claim:
                released = self.ledger.release_trigger(str(claim), execution_arn, text)
            return Reconciled(run_id=run_id, status=None, released_claim=released)
        if run.get("execution_id") != execution_arn or run.get("status") != RunStatus.RUNNING:
            # A later execution (a redrive) owns the run now, or Finalize already ended it.
            return Reconciled(run_id=run_id, status=str(run.get("status")))
        self._end_items(run_id, final)
        self.ledger.update_run(run_id, {"status": final, "cause": text, "finished_at": now_iso()})
        logger.info(
            "run reconciled with its execution",
            extra={"run_id": run_id, "execution_status": execution_status, "status": final},
        )
        return Reconciled(run_id=run_id, status=final)

    def _end_items(self, run_id: str, final: RunStatus) -> None:
        status = ItemStatus.CANCELLED if final is RunStatus.CANCELLED else ItemStatus.FAILED
        ended: list[Mapping[str, Any]] = [
            {**record, "status": status, "finished_at": now_iso()}
            for record in self.ledger.iter_items(run_id)
            if record.get("status") in _UNFINISHED_ITEMS
        ]
        if ended:
            self.ledger.put_items(run_id, ended)
