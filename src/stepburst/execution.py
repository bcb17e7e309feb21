"""Run one work unit: the same code on Lambda and in the worker container.

Items run in order. An item that already succeeded (an earlier attempt, or the Lambda run that
hit its timeout before a container took over) is skipped, so re-running a unit is safe. Each
item's failure is recorded with its cause; the unit then raises ``ItemsFailedError`` so that
the state machine counts the unit against the job's tolerated-failure budget.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stepburst.errors import ItemsFailedError, StepburstError
from stepburst.jobs import Job
from stepburst.jsonl import process_jsonl_range
from stepburst.ledger import Ledger, now_iso
from stepburst.manifest import Item, Unit
from stepburst.observability import logger
from stepburst.settings import Settings
from stepburst.storage import S3Object

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
RUNNING = "RUNNING"

ItemFunction = Callable[[str, Mapping[str, str]], Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class UnitResult:
    unit: int
    succeeded: int
    skipped: int
    failed: int

    def to_state(self) -> dict[str, int]:
        return {
            "unit": self.unit,
            "succeeded": self.succeeded,
            "skipped": self.skipped,
            "failed": self.failed,
        }


def part_key(job: Job, run_id: str, index: int) -> str:
    return f"{job.output.prefix}{run_id}/part-{index:05d}.jsonl"


def rejects_part_key(job: Job, run_id: str, index: int) -> str:
    return f"{job.output.prefix}{run_id}/rejects/part-{index:05d}.jsonl"


def load_item_function(reference: str) -> ItemFunction:
    module_name, _, function_name = reference.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise StepburstError(f"cannot load {reference!r}: {exc}") from exc
    if not callable(function):
        raise StepburstError(f"{reference!r} is not callable")
    return function  # type: ignore[no-any-return]


class UnitRunner:
    def __init__(self, settings: Settings, ledger: Ledger) -> None:
        self.settings = settings
        self.ledger = ledger

    def run(
        self,
        job: Job,
        run_id: str,
        unit: Unit,
        *,
        attempt: int,
        route: str,
        params: Mapping[str, str] | None = None,
    ) -> UnitResult:
        existing = self.ledger.get_items(run_id, (item.sk for item in unit.items))
        pending = [
            item for item in unit.items if existing.get(item.sk, {}).get("status") != SUCCEEDED
        ]
        started_at = now_iso()
        self.ledger.put_items(
            run_id,
            (
                {
                    "sk": item.sk,
                    "item": item.index,
                    "unit": unit.index,
                    "status": RUNNING,
                    "route": route,
                    "attempts": int(existing.get(item.sk, {}).get("attempts", 0)) + 1,
                    "last_attempt": attempt,
                    "started_at": started_at,
                    "estimated_seconds": item.estimated_seconds,
                }
                for item in pending
            ),
        )
        outcomes = []
        failed = 0
        for item in pending:
            began = time.perf_counter()
            record: dict[str, Any] = {
                "sk": item.sk,
                "item": item.index,
                "unit": unit.index,
                "route": route,
                "attempts": int(existing.get(item.sk, {}).get("attempts", 0)) + 1,
                "last_attempt": attempt,
                "started_at": started_at,
                "estimated_seconds": item.estimated_seconds,
            }
            try:
                details = self._run_item(job, run_id, item, params or {})
            except Exception as exc:  # an item's failure is recorded, not raised: see module doc
                failed += 1
                logger.exception(
                    "item failed", extra={"run_id": run_id, "item": item.index, "route": route}
                )
                record.update(status=FAILED, error=type(exc).__name__, cause=str(exc)[:4000])
            else:
                record.update(status=SUCCEEDED, **details)
            record["finished_at"] = now_iso()
            record["duration_seconds"] = round(time.perf_counter() - began, 3)
            outcomes.append(record)
        self.ledger.put_items(run_id, outcomes)
        result = UnitResult(
            unit=unit.index,
            succeeded=len(pending) - failed,
            skipped=len(unit.items) - len(pending),
            failed=failed,
        )
        logger.info("unit finished", extra={"run_id": run_id, **result.to_state()})
        if failed:
            raise ItemsFailedError(
                f"{failed} of {len(unit.items)} items of unit {unit.index} failed; "
                "the ledger has each cause"
            )
        return result

    def _run_item(
        self, job: Job, run_id: str, item: Item, params: Mapping[str, str]
    ) -> dict[str, Any]:
        if item.jsonl is not None:
            source = item.jsonl.source
            result = process_jsonl_range(
                S3Object(source.bucket, source.key, source.version_id),
                item.jsonl.start,
                item.jsonl.end,
                job.run.function,
                S3Object(self.settings.output_bucket, part_key(job, run_id, item.index)),
                S3Object(self.settings.output_bucket, rejects_part_key(job, run_id, item.index)),
                if_match=source.etag,
            )
            stats = result.stats
            return {
                "lines": stats.lines,
                "records": stats.records,
                "rejects": stats.rejects,
                "filtered": stats.filtered,
                "bytes_in": stats.bytes_in,
                "bytes_out": stats.bytes_out,
                "output_key": result.output.key,
                "rejects_key": result.rejects.key if result.rejects is not None else None,
            }
        if item.value is not None:
            returned = load_item_function(job.run.function)(item.value, params)
            return {"value": item.value, "result": dict(returned) if returned else None}
        raise StepburstError(f"item {item.index} has nothing to run")
