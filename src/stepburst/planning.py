"""Plan a run: match the job, validate the input, claim the trigger, split, route, write.

The plan's output is small whatever the run's size: counts and a pointer to the manifest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from stepburst import storage
from stepburst.errors import InvalidInputError
from stepburst.jobs import Job, JobCatalog
from stepburst.ledger import Ledger, now_iso
from stepburst.manifest import (
    BatchCompute,
    EcsCompute,
    Item,
    JsonlRange,
    Route,
    SourceObject,
    Unit,
    item_sort_key,
    manifest_key,
    results_prefix,
)
from stepburst.observability import logger, metrics
from stepburst.settings import Settings
from stepburst.splitting import newline_aligned_ranges
from stepburst.triggers import ManualStart, Trigger, UploadTrigger, short_hash

# Objects up to this size are read once and split in memory instead of probing each boundary.
WHOLE_READ_LIMIT = 32 * 1024 * 1024
# Fixed cost of an item (start-up, S3 first byte, ledger writes), added to its estimate.
ITEM_OVERHEAD_SECONDS = 1.0
# A Lambda unit's payload must stay far below the 256 KiB state limit.
MAX_ITEMS_PER_UNIT = 100

PlanStatus = Literal["PLANNED", "DUPLICATE", "IGNORED"]


@dataclass(frozen=True, slots=True)
class PlanRequest:
    trigger: Trigger
    execution_id: str
    started_at: str


@dataclass(frozen=True, slots=True)
class Plan:
    status: PlanStatus
    run_id: str | None = None
    job: str | None = None
    units: int = 0
    items: int = 0
    manifest: dict[str, str] | None = None
    result_prefix: str | None = None
    max_concurrency: int = 1
    tolerated_failure_percentage: float = 0.0
    routes: dict[str, int] | None = None
    reason: str | None = None

    def to_state(self) -> dict[str, Any]:
        """The Plan state's output: pointers and counts only."""
        return {
            name: value for name in self.__slots__ if (value := getattr(self, name)) is not None
        }


def run_id_for(job: Job, when: datetime, identity: str) -> str:
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{job.name}-{stamp}-{short_hash(identity)}"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Planner:
    def __init__(self, settings: Settings, catalog: JobCatalog, ledger: Ledger) -> None:
        self.settings = settings
        self.catalog = catalog
        self.ledger = ledger

    def plan(self, request: PlanRequest) -> Plan:
        trigger = request.trigger
        if isinstance(trigger, UploadTrigger):
            return self._plan_upload(trigger, request)
        job = self.catalog.get(trigger.job)
        if isinstance(trigger, ManualStart):
            if not job.triggers.manual:
                raise InvalidInputError("job", f"job {job.name!r} does not allow manual starts")
            run_id = run_id_for(job, _parse_time(request.started_at), request.execution_id)
            items = self._split(job, trigger.input)
        else:
            # Scheduler may deliver a schedule's invocation twice: the scheduled time is the
            # identity, so both deliveries share one run id and one ledger claim.
            run_id = run_id_for(job, trigger.scheduled_time, f"{job.name}@{trigger.scheduled_time}")
            if not self.ledger.claim_trigger(
                f"schedule/{run_id}", run_id, {"job": job.name, **trigger.describe()}
            ):
                return Plan(status="DUPLICATE", run_id=run_id, job=job.name)
            items = self._split(job, trigger.input)
        return self._write_plan(job, run_id, trigger, items, request)

    def _plan_upload(self, trigger: UploadTrigger, request: PlanRequest) -> Plan:
        job = self.catalog.for_upload(trigger.key)
        details = trigger.describe()
        if job is None:
            self.ledger.record_ignored_trigger(
                trigger.identity, {**details, "execution_id": request.execution_id}
            )
            logger.info("upload matches no job", extra=details)
            metrics.add_metric(name="UploadsIgnored", unit="Count", value=1)
            return Plan(status="IGNORED", reason=f"no job matches {trigger.key!r}")
        run_id = run_id_for(job, trigger.time, trigger.identity)
        if not self.ledger.claim_trigger(trigger.identity, run_id, details):
            logger.info("duplicate delivery", extra={"run_id": run_id, **details})
            metrics.add_metric(name="DuplicateDeliveries", unit="Count", value=1)
            return Plan(status="DUPLICATE", run_id=run_id, job=job.name)
        source = SourceObject(
            bucket=trigger.bucket,
            key=trigger.key,
            version_id=trigger.version_id if trigger.version_id not in (None, "null") else None,
            etag=trigger.etag or None,
        )
        items = self._split_jsonl(job, source) if job.split.jsonl else []
        return self._write_plan(job, run_id, trigger, items, request)

    # -- splitting --------------------------------------------------------------------------

    def _split(self, job: Job, given: dict[str, Any]) -> list[Item]:
        if job.split.jsonl is not None:
            key = given.get("key")
            if not isinstance(key, str) or not key:
                raise InvalidInputError(
                    "input.key", "give the key of the JSONL object in the input bucket"
                )
            bucket = self.settings.input_bucket
            info = storage.head_object(storage.S3Object(bucket, key))
            source = SourceObject(
                bucket=bucket, key=key, version_id=info.version_id, etag=info.etag
            )
            return self._split_jsonl(job, source)
        if job.split.items is not None:
            return self._split_items(job, given.get("items"))
        raise InvalidInputError("split", f"job {job.name!r} has no split this planner knows")

    def _split_jsonl(self, job: Job, source: SourceObject) -> list[Item]:
        assert job.split.jsonl is not None
        obj = storage.S3Object(source.bucket, source.key, source.version_id)
        size = storage.head_object(obj).size
        if size <= WHOLE_READ_LIMIT:
            whole = storage.read_range(obj, 0, size)

            def read(start: int, end: int) -> bytes:
                return whole[start:end]

        else:

            def read(start: int, end: int) -> bytes:
                return storage.read_range(obj, start, end)

        target = max(1, int(job.split.jsonl.range_mb * 1_000_000))
        bytes_per_second = job.estimate.mb_per_second * 1_000_000
        return [
            Item(
                index=index,
                sk=item_sort_key(index),
                estimated_seconds=round(
                    ITEM_OVERHEAD_SECONDS + (rng.end - rng.start) / bytes_per_second, 3
                ),
                jsonl=JsonlRange(source=source, start=rng.start, end=rng.end),
            )
            for index, rng in enumerate(newline_aligned_ranges(size, target, read))
        ]

    def _split_items(self, job: Job, given: Any) -> list[Item]:
        assert job.split.items is not None
        if not isinstance(given, list) or not given:
            raise InvalidInputError("input.items", "give a non-empty list of work-item names")
        if len(given) > job.split.items.max_items:
            raise InvalidInputError(
                "input.items", f"{len(given)} items is over this job's max_items"
            )
        for position, value in enumerate(given):
            if not isinstance(value, str) or not value:
                raise InvalidInputError(f"input.items[{position}]", "must be a non-empty string")
        seconds = job.estimate.seconds_per_item
        return [
            Item(index=i, sk=item_sort_key(i), estimated_seconds=seconds, value=value)
            for i, value in enumerate(given)
        ]

    # -- routing and writing ----------------------------------------------------------------

    def _write_plan(
        self, job: Job, run_id: str, trigger: Trigger, items: Sequence[Item], request: PlanRequest
    ) -> Plan:
        units = build_units(job, items)
        key = manifest_key(run_id)
        storage.put_json(
            self.settings.work_bucket, key, [unit.model_dump(mode="json") for unit in units]
        )
        routes: dict[str, int] = {}
        for unit in units:
            routes[unit.route] = routes.get(unit.route, 0) + len(unit.items)
        self.ledger.create_run(
            {
                "run_id": run_id,
                "job": job.name,
                "status": "RUNNING",
                "trigger": trigger.describe(),
                "execution_id": request.execution_id,
                "started_at": now_iso(),
                "planned_items": len(items),
                "planned_units": len(units),
                "planned_bytes": sum(item.size_bytes for item in items),
                "estimated_seconds": round(sum(item.estimated_seconds for item in items), 3),
                "routes": routes,
                "output_prefix": f"{job.output.prefix}{run_id}/",
                "manifest_key": key,
            }
        )
        metrics.add_metric(name="RunsPlanned", unit="Count", value=1)
        metrics.add_metric(name="ItemsPlanned", unit="Count", value=len(items))
        logger.info(
            "run planned",
            extra={"run_id": run_id, "job": job.name, "items": len(items), "units": len(units)},
        )
        return Plan(
            status="PLANNED",
            run_id=run_id,
            job=job.name,
            units=len(units),
            items=len(items),
            manifest={"bucket": self.settings.work_bucket, "key": key},
            result_prefix=results_prefix(run_id),
            max_concurrency=job.max_concurrency,
            tolerated_failure_percentage=job.tolerated_failure_percent,
            routes=routes,
        )


def route_for(job: Job, estimated_seconds: float) -> Route:
    platform = job.compute.platform
    if platform != "auto":
        return platform
    return "lambda" if estimated_seconds <= job.compute.lambda_max_seconds else "ecs"


def build_units(job: Job, items: Sequence[Item]) -> list[Unit]:
    """Group items into work units.

    Container items run one per unit. Lambda items are grouped only as far as needed to keep
    the number of units near the job's concurrency (so parallelism is not lost), and never past
    the job's Lambda time budget or MAX_ITEMS_PER_UNIT.
    """
    compute = job.compute
    fallback: Literal["ecs", "batch"] = "batch" if compute.platform == "batch" else "ecs"
    ecs = EcsCompute(
        cpu=str(compute.cpu),
        memory=str(compute.memory_mb),
        capacity_provider_strategy=[
            {"CapacityProvider": "FARGATE_SPOT" if compute.spot else "FARGATE", "Weight": 1}
        ],
    )
    batch = BatchCompute(
        resource_requirements=[
            {"Type": "VCPU", "Value": f"{compute.cpu / 1024:g}"},
            {"Type": "MEMORY", "Value": str(compute.memory_mb)},
        ]
    )
    lambda_items = [item for item in items if route_for(job, item.estimated_seconds) == "lambda"]
    per_unit = min(MAX_ITEMS_PER_UNIT, max(1, math.ceil(len(lambda_items) / job.max_concurrency)))

    groups: list[tuple[Route, list[Item]]] = []
    current: list[Item] = []
    budget = 0.0
    for item in items:
        route = route_for(job, item.estimated_seconds)
        if route != "lambda":
            groups.append((route, [item]))
            continue
        if current and (
            len(current) >= per_unit or budget + item.estimated_seconds > compute.lambda_max_seconds
        ):
            groups.append(("lambda", current))
            current, budget = [], 0.0
        current.append(item)
        budget += item.estimated_seconds
    if current:
        groups.append(("lambda", current))
    return [
        Unit(
            index=index,
            route=route,
            fallback=fallback,
            max_attempts=job.retries + 1,
            timeout_seconds=compute.container_timeout_seconds,
            items=group,
            ecs=ecs,
            batch=batch,
        )
        for index, (route, group) in enumerate(groups)
    ]
