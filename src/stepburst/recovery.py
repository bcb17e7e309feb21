"""After a unit fails: record the attempt in the ledger, and tell the state machine what next.

The state machine sends every failure of a unit here, whatever its route, with the report the
route gave (see :mod:`stepburst.failures`). This records the attempt's class, cause, exit code
and stop reason on each item of the unit that has not succeeded, decides by class whether and
how the unit runs again, and answers with the next attempt's state. When the unit is given up,
its items are marked FAILED with that cause and the unit's digest is written, so Finalize counts
them like any other; when the run was cancelled meanwhile, they are marked CANCELLED.

Items a user cancelled one by one (``stepburst cancel RUN --item``, see
:mod:`stepburst.item_cancels`) are marked CANCELLED whatever the attempt's failure, and never
retried. The stop of their container is no failure of the unit: its other unfinished items run
again at once, and a unit left with nothing to do answers ``unit_cancelled``, which the state
machine ends as a success of the unit, so the fan-out's failure budget is not spent on it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stepburst.failures import (
    ITEM_CANCELLED_ERROR,
    Attempts,
    Decision,
    Failure,
    FailureClass,
    RetryPolicy,
    classify_batch,
    classify_ecs,
    classify_lambda,
    decide,
)
from stepburst.item_cancels import cancelled_fields, requested_cancels
from stepburst.jobs import Job, JobCatalog
from stepburst.jobs.compute_rules import FARGATE_MEMORY
from stepburst.ledger import Ledger, item_digest, now_iso
from stepburst.manifest import Unit
from stepburst.observability import logger
from stepburst.statuses import ItemStatus, RunStatus


@dataclass(frozen=True, slots=True)
class UnitFailure:
    """What the state machine knows when a unit's attempt failed."""

    run_id: str
    job: str
    unit: Unit
    route: str
    attempt: int
    attempts: Mapping[str, int]
    params: Mapping[str, str]
    environment: list[dict[str, str]]
    failure: Mapping[str, Any] | None = None
    stopped: Mapping[str, Any] | None = None


def fargate_size(cpu: int, memory_mb: int) -> tuple[int, int]:
    """The smallest valid Fargate pair with at least ``cpu`` units and ``memory_mb``."""
    for units, sizes in FARGATE_MEMORY.items():
        if units >= cpu and memory_mb <= sizes[-1]:
            return units, next(size for size in sizes if size >= memory_mb)
    largest = max(FARGATE_MEMORY)
    return largest, FARGATE_MEMORY[largest][-1]


def classify(event: UnitFailure) -> Failure:
    """The failure of this attempt, from whichever report its route gave."""
    failure = event.failure or {}
    error = str(failure.get("Error") or "")
    cause = failure.get("Cause")
    stopped = event.stopped or {}
    if event.route == "lambda":
        return classify_lambda(error, cause)
    if event.route == "batch":
        return classify_batch(stopped.get("job"), error, cause)
    return classify_ecs(stopped.get("task"), error, cause)


def policy_of(job: Job) -> RetryPolicy:
    declared = job.failure_policy
    return RetryPolicy(
        application_retries=job.retries,
        infrastructure_attempts=declared.infrastructure_attempts,
        memory_cap_mb=declared.memory_cap_mb,
        spot_fallback_after=declared.spot_fallback_after,
    )


class UnitRecovery:
    def __init__(self, catalog: JobCatalog, ledger: Ledger, rng: random.Random | None = None):
        self.catalog = catalog
        self.ledger = ledger
        self.rng = rng or random.Random()

    def recover(self, event: UnitFailure) -> dict[str, Any]:
        job = self.catalog.get(event.job)
        failure = classify(event)
        run = self.ledger.get_run(event.run_id) or {}
        requested = requested_cancels(run, event.unit.manifest)
        existing = self.ledger.get_items(event.run_id, (item.sk for item in event.unit.items))
        others_pending = any(
            item.index not in requested
            and (existing.get(item.sk) or {}).get("status") != ItemStatus.SUCCEEDED
            for item in event.unit.items
        )
        ours = requested.keys() & {item.index for item in event.unit.items}
        if ours and not others_pending and failure.failure_class is not FailureClass.CANCELLED:
            # Whatever else this attempt met, nothing the user still wants is left to run.
            failure = Failure(
                FailureClass.CANCELLED,
                ITEM_CANCELLED_ERROR,
                f"every unfinished item was cancelled by the user ({failure.cause})",
            )
        if run.get("status") == RunStatus.CANCELLED:
            failure = Failure(
                FailureClass.CANCELLED, "Stepburst.Cancelled", "the run was cancelled"
            )
        memory_mb = int(event.unit.ecs.memory)
        decision = decide(
            failure,
            route=event.route,
            fallback=event.unit.fallback,
            attempts=Attempts(dict(event.attempts)),
            policy=policy_of(job),
            memory_mb=memory_mb,
            spot=any(
                entry.get("CapacityProvider") == "FARGATE_SPOT"
                for entry in event.unit.ecs.capacity_provider_strategy
            ),
            rng=self.rng,
            others_pending=others_pending,
        )
        self._record(event, decision, existing, requested)
        logger.info(
            "unit attempt failed",
            extra={
                "run_id": event.run_id,
                "unit": event.unit.index,
                "route": event.route,
                "attempt": event.attempt,
                "failure_class": failure.failure_class.value,
                "retry": decision.retry,
                "reason": decision.reason,
            },
        )
        unit_cancelled = not decision.retry and failure.failure_class is FailureClass.CANCELLED
        return {
            "retry": decision.retry,
            # Every unfinished item was cancelled by the user: the unit did not fail.
            "unit_cancelled": unit_cancelled and run.get("status") != RunStatus.CANCELLED,
            "wait_seconds": decision.wait_seconds,
            "failure": {**failure.to_record(), "decision": decision.reason},
            "state": self._next_state(event, decision) if decision.retry else None,
        }

    def _next_state(self, event: UnitFailure, decision: Decision) -> dict[str, Any]:
        unit = event.unit.model_dump(mode="json")
        route = decision.route or event.route
        if decision.memory_mb is not None:
            cpu, memory = fargate_size(int(event.unit.ecs.cpu), decision.memory_mb)
            unit["ecs"]["cpu"] = str(cpu)
            unit["ecs"]["memory"] = str(memory)
            unit["batch"]["resource_requirements"] = [
                {"Type": "VCPU", "Value": f"{cpu / 1024:g}"},
                {"Type": "MEMORY", "Value": str(memory)},
                *(
                    requirement
                    for requirement in event.unit.batch.resource_requirements
                    if requirement["Type"] == "GPU"
                ),
            ]
        if decision.on_demand:
            unit["ecs"]["capacity_provider_strategy"] = [
                {"CapacityProvider": "FARGATE", "Weight": 1}
            ]
            unit["batch"]["job_queue"] = event.unit.batch.on_demand_queue
        return {
            "run_id": event.run_id,
            "job": event.job,
            "unit": unit,
            "route": route,
            "attempt": event.attempt + 1,
            "attempts": decision.attempts.to_state(),
            "params": dict(event.params),
            "environment": event.environment,
        }

    def _record(
        self,
        event: UnitFailure,
        decision: Decision,
        existing: dict[str, dict[str, Any]],
        requested: Mapping[int, Mapping[str, Any]],
    ) -> None:
        """One attempt in each unfinished item's history; a final status when given up, or
        when a user cancelled the item."""
        items = event.unit.items
        failure = decision.failure
        attempt = {
            "attempt": event.attempt,
            "route": event.route,
            "failed_at": now_iso(),
            **failure.to_record(),
            "decision": decision.reason,
        }
        if decision.retry:
            status = ItemStatus.RETRYING
        elif failure.failure_class is FailureClass.CANCELLED:
            status = ItemStatus.CANCELLED
        else:
            status = ItemStatus.FAILED
        records = []
        for item in items:
            previous = existing.get(item.sk) or {}
            if previous.get("status") == ItemStatus.SUCCEEDED:
                continue
            history = [*(previous.get("history") or []), attempt]
            record = {
                **previous,
                "sk": item.sk,
                "item": item.index,
                "unit": event.unit.index,
                "value": item.value,
                "route": event.route,
                "attempts": max(int(previous.get("attempts") or 0), event.attempt),
                "last_attempt": event.attempt,
                "estimated_seconds": item.estimated_seconds,
                "status": status,
                "history": history,
            }
            if item.index in requested:
                # Cancelled by a user: final whatever this attempt's failure was.
                record.update(cancelled_fields(requested[item.index]))
            elif not decision.retry:
                # The item's own failure (a raising function) is more precise than the unit's.
                own = previous.get("status") == ItemStatus.FAILED and previous.get("cause")
                record.update(
                    error=previous.get("error") if own else failure.error,
                    cause=previous.get("cause") if own else failure.cause,
                    failure_class=failure.failure_class.value,
                    finished_at=now_iso(),
                )
                # A worker that ran the item exits 3 for it; the item's command's code is its own.
                if failure.exit_code is not None and not (own and "exit_code" in previous):
                    record["exit_code"] = failure.exit_code
                if failure.stop_reason:
                    record["stop_reason"] = failure.stop_reason
            records.append(record)
            existing[item.sk] = record
        self.ledger.put_items(event.run_id, records)
        if not decision.retry:
            self.ledger.put_unit_digest(
                event.run_id,
                event.unit.manifest,
                event.unit.index,
                (item_digest(existing[item.sk]) for item in items if item.sk in existing),
            )
