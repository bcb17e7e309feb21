"""Plan a run: match the job, validate the input, claim the trigger, split, route, write.

The plan's output is small whatever the run's size: counts and a pointer to the manifest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from stepburst import (
    csv_records,
    formats,
    outputs,
    parquet_records,
    replacing,
    split_functions,
    storage,
    workitems,
)
from stepburst.combining import combine_route
from stepburst.errors import InvalidInputError, StepburstError
from stepburst.jobs import Job, JobCatalog
from stepburst.layout import (
    manifest_key,
    object_version,
    results_prefix,
    schedule_identity,
)
from stepburst.ledger import Ledger, now_iso
from stepburst.manifest import Item, Unit
from stepburst.manifest_stream import (
    MAX_ITEMS_PER_UNIT,
    ByteSpan,
    DiscardedManifest,
    ManifestOutput,
    ManifestSummary,
    ManifestWriter,
    Payload,
    PlannedItem,
    SourceRef,
    iter_units,
    parse_units,
    route_for,
    s3_manifest,
    write_manifest,
)
from stepburst.observability import MetricUnit, logger, metrics
from stepburst.settings import Settings
from stepburst.splitting import newline_aligned_ranges
from stepburst.statuses import ItemStatus, PlanStatus, RunStatus
from stepburst.triggers import ManualStart, RedriveStart, Trigger, UploadTrigger, short_hash

# Objects up to this size are read once and split in memory instead of probing each boundary.
WHOLE_READ_LIMIT = 32 * 1024 * 1024
# How many bytes of JSON lines one byte of gzip holds, to estimate a gzip item's duration
# (JSON text compresses 5 to 8 times; the larger figure routes to a container sooner).
GZIP_EXPANSION = 8
# Fixed cost of an item (start-up, S3 first byte, ledger writes), added to its estimate.
ITEM_OVERHEAD_SECONDS = 1.0
__all__ = ["MAX_ITEMS_PER_UNIT", "Draft", "Plan", "PlanRequest", "Planner", "Preview", "route_for"]
# Params reach containers as environment overrides, which ECS limits to 8 KiB in all.
MAX_PARAMS_BYTES = 4096
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
    params: dict[str, str] | None = None
    environment: list[dict[str, str]] | None = None
    # Where the job's combine step runs (lambda or ecs); None for a job without one.
    combine: str | None = None
    reason: str | None = None

    def to_state(self) -> dict[str, Any]:
        """The Plan state's output: pointers and counts only."""
        return {
            name: value for name in self.__slots__ if (value := getattr(self, name)) is not None
        }


Pieces = Iterator[tuple[float, Payload]]


@dataclass(frozen=True, slots=True)
class Draft:
    """A checked start before any item is made: its items come as the manifest is written."""

    job: Job
    params: dict[str, str]
    pieces: Pieces
    expected_items: int | None = None
    # A date split's one item: the day its output key's {date} names.
    day: str | None = None


@dataclass(frozen=True, slots=True)
class Preview:
    """What a plan would hold, counted without keeping its items: what ``start`` shows."""

    job: Job
    params: dict[str, str]
    summary: ManifestSummary

    def routes(self) -> dict[str, int]:
        return dict(self.summary.routes)


@dataclass(frozen=True, slots=True)
class RunTarget:
    """The run a trigger starts (``job`` None for a redrive) and the trigger claim it takes."""

    run_id: str
    job: str | None
    claim: str | None


def run_id_for(job: Job, when: datetime, identity: str) -> str:
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{job.name}-{stamp}-{short_hash(identity)}"


def schedule_run_id(job: Job, scheduled_time: datetime) -> str:
    """The run of one scheduled time: every delivery of it, and every firing by hand."""
    return run_id_for(job, scheduled_time, f"{job.name}@{scheduled_time.astimezone(UTC)}")


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
        if isinstance(trigger, RedriveStart):
            return self._plan_redrive(trigger, request)
        job = self.catalog.get(trigger.job)
        target = self.run_for(request)
        assert target is not None
        if isinstance(trigger, ManualStart):
            draft = self._manual_draft(trigger)
            self.ledger.link_execution(request.execution_id, run_id=target.run_id)
            return self._write_plan(draft, target.run_id, trigger, request)
        if job.triggers.schedule is None:
            raise InvalidInputError("job", f"job {job.name!r} has no schedule")
        if not self._claim(target, trigger.describe(), request):
            return Plan(status=PlanStatus.DUPLICATE, run_id=target.run_id, job=job.name)
        local_time = trigger.scheduled_time.astimezone(ZoneInfo(job.triggers.schedule.timezone))
        draft = self._draft(job, trigger.input, job.params, scheduled=local_time)
        return self._write_plan(draft, target.run_id, trigger, request)

    def run_for(self, request: PlanRequest) -> RunTarget | None:
        """The run a trigger starts and the claim it takes, without writing anything: what
        Plan writes, and what a failed Plan must release. None for an upload no job takes."""
        trigger = request.trigger
        if isinstance(trigger, RedriveStart):
            return RunTarget(run_id=trigger.redrive, job=None, claim=None)
        if isinstance(trigger, UploadTrigger):
            job = self.catalog.for_upload(trigger.key)
            if job is None:
                return None
            run_id = run_id_for(job, trigger.time, trigger.identity)
            return RunTarget(run_id=run_id, job=job.name, claim=trigger.identity)
        job = self.catalog.get(trigger.job)
        if isinstance(trigger, ManualStart):
            run_id = run_id_for(job, _parse_time(request.started_at), request.execution_id)
            return RunTarget(run_id=run_id, job=job.name, claim=None)
        # Scheduler may deliver one invocation twice: the scheduled time is the identity, so
        # both deliveries share one run id and one ledger claim.
        run_id = schedule_run_id(job, trigger.scheduled_time)
        return RunTarget(run_id=run_id, job=job.name, claim=schedule_identity(run_id))

    def _claim(self, target: RunTarget, details: dict[str, Any], request: PlanRequest) -> bool:
        assert target.claim is not None
        claimed = self.ledger.claim_trigger(
            target.claim,
            target.run_id,
            {"job": target.job, **details},
            execution_id=request.execution_id,
        )
        if not claimed:
            logger.info("duplicate delivery", extra={"run_id": target.run_id, **details})
            metrics.add_metric(name="DuplicateDeliveries", unit=MetricUnit.Count, value=1)
        return claimed

    def preview(self, start: ManualStart) -> Preview:
        """Validate a manual start and plan it, writing nothing: what ``start`` shows. The
        items are counted, routed and grouped as they are made, never all kept."""
        draft = self._manual_draft(start)
        summary = write_manifest(
            draft.job,
            draft.pieces,
            DiscardedManifest(),
            stack=self.settings.stack_name,
            expected_items=draft.expected_items,
        )
        return Preview(job=draft.job, params=draft.params, summary=summary)

    def _manual_draft(self, start: ManualStart) -> Draft:
        job = self.catalog.get(start.job)
        if not job.triggers.manual:
            raise InvalidInputError("job", f"job {job.name!r} does not allow manual starts")
        check_declared_params(job, start.params)
        return self._draft(job, start.input, {**job.params, **start.params})

    def _draft(
        self,
        job: Job,
        given: dict[str, Any],
        params: dict[str, str],
        *,
        scheduled: datetime | None = None,
    ) -> Draft:
        validate_input(job, given)
        validate_params(params)
        pieces, expected = self._split(job, given, params, scheduled)
        day = None
        if job.split.date is not None:
            day = _input_date(given, scheduled).strftime(job.split.date.format)
        return Draft(job=job, params=params, pieces=pieces, expected_items=expected, day=day)

    def _plan_upload(self, trigger: UploadTrigger, request: PlanRequest) -> Plan:
        target = self.run_for(request)
        details = trigger.describe()
        if target is None or target.job is None:
            self.ledger.record_ignored_trigger(
                trigger.identity, {**details, "execution_id": request.execution_id}
            )
            logger.info("upload matches no job", extra=details)
            metrics.add_metric(name="UploadsIgnored", unit=MetricUnit.Count, value=1)
            return Plan(status=PlanStatus.IGNORED, reason=f"no job matches {trigger.key!r}")
        job = self.catalog.get(target.job)
        run_id = target.run_id
        if not self._claim(target, details, request):
            return Plan(status=PlanStatus.DUPLICATE, run_id=run_id, job=job.name)
        source = SourceRef(
            bucket=trigger.bucket,
            key=trigger.key,
            version_id=object_version(trigger.version_id),
            etag=trigger.etag or None,
        )
        # The event gives the version's size: no need to ask S3 for it again.
        pieces = self._split_object(job, source, trigger.size)
        if pieces is None:
            pieces = iter([(job.estimate.seconds_per_item, trigger.key)])
        draft = Draft(job=job, params=job.params, pieces=pieces)
        return self._write_plan(draft, run_id, trigger, request)

    def _plan_redrive(self, trigger: RedriveStart, request: PlanRequest) -> Plan:
        run_id = trigger.redrive
        run = self.ledger.get_run(run_id)
        if run is None:
            raise InvalidInputError("redrive", f"no run {run_id!r} in the ledger")
        if run.get("status") == RunStatus.RUNNING:
            raise InvalidInputError("redrive", f"run {run_id!r} is still running")
        job = self.catalog.get(str(run["job"]))
        redrive = int(run.get("redrives", 0)) + 1
        params = {str(k): str(v) for k, v in (run.get("params") or {}).items()}
        key = manifest_key(run_id, redrive)
        # The first manifest is read a unit at a time and the new one written as it goes.
        with s3_manifest(self.settings.work_bucket, key) as output:
            writer = ManifestWriter(job, output, stack=self.settings.stack_name, manifest=redrive)
            for unit in iter_units(self.settings.work_bucket, manifest_key(run_id)):
                records = self.ledger.get_items(run_id, (item.sk for item in unit.items))
                for item in unit.items:
                    if records.get(item.sk, {}).get("status") != ItemStatus.SUCCEEDED:
                        writer.add_item(item)
            # A run whose items all succeeded but that still ended FAILED (its Finalize failed
            # past its retries; the reconciler ended it) is redriven with no item: straight
            # to Finalize, which reads every item's end from the ledger.
            if not writer.summary.items and run.get("status") == RunStatus.SUCCEEDED:
                raise InvalidInputError("redrive", f"every item of run {run_id!r} succeeded")
            summary = writer.close()
        self.ledger.update_run(
            run_id,
            {
                "status": RunStatus.RUNNING,
                "redrives": redrive,
                "manifest_key": key,
                "execution_id": request.execution_id,
                "redriven_items": summary.items,
                "redriven_at": now_iso(),
            },
        )
        self.ledger.link_execution(request.execution_id, run_id=run_id)
        logger.info("run redriven", extra={"run_id": run_id, "items": summary.items})
        return self._plan_state(
            job, run_id, key=key, redrive=redrive, summary=summary, params=params
        )

    # -- splitting --------------------------------------------------------------------------
    # Each split yields (estimated seconds, payload) pairs as it makes them; the manifest
    # writer numbers, routes and groups them. Checks that need no item (max_items against a
    # known count, a missing key) run before the first item is made.

    def _split(
        self,
        job: Job,
        given: dict[str, Any],
        params: dict[str, str],
        scheduled: datetime | None,
    ) -> tuple[Pieces, int | None]:
        split = job.split
        if split.jsonl is not None or split.csv is not None or split.parquet is not None:
            key = given.get("key")
            if not isinstance(key, str) or not key:
                raise InvalidInputError(
                    "input.key", "give the key of the object to split in the input bucket"
                )
            info = storage.head_object(storage.S3Object(self.settings.input_bucket, key))
            source = SourceRef(
                bucket=self.settings.input_bucket,
                key=key,
                version_id=info.version_id,
                etag=info.etag,
            )
            pieces = self._split_object(job, source, info.size)
            assert pieces is not None
            return pieces, None
        seconds = job.estimate.seconds_per_item
        if split.items is not None:
            count, names = self._work_item_names(given)
            if count > split.items.max_items:
                raise InvalidInputError(
                    "input.items",
                    f"{count} items is over this job's max_items ({split.items.max_items})",
                )
            return ((seconds, name) for name in names), count
        if split.function is not None:
            # The function may read the input (a raster's header) wherever it is called from,
            # a preview in the CLI included, so it is told the bucket rather than the env.
            where = {**params, "INPUT_BUCKET": self.settings.input_bucket}
            pieces = split_functions.pieces(
                split.function, given, where, seconds, self.settings.jobs_dir
            )
            return pieces, None
        if split.objects is not None:
            return self._split_objects(job, given), None
        if split.date is not None:
            day = _input_date(given, scheduled)
            return iter([(seconds, day.strftime(split.date.format))]), 1
        item = given.get("item", job.name)
        if not isinstance(item, str) or not item:
            raise InvalidInputError("input.item", "must be a non-empty string")
        return iter([(seconds, item)]), 1

    def _split_object(self, job: Job, source: SourceRef, size: int) -> Pieces | None:
        """The items of one input object, or None when the job does not split objects."""
        split = job.split
        if split.jsonl is not None:
            return iter(self._split_jsonl(job, source, size))
        if split.csv is not None:
            return csv_records.plan_ranges(
                source,
                size,
                split.csv,
                bytes_per_second=job.estimate.mb_per_second * 1_000_000,
                overhead_seconds=ITEM_OVERHEAD_SECONDS,
            )
        if split.parquet is not None:
            return parquet_records.plan_row_groups(
                source,
                size,
                bytes_per_second=job.estimate.mb_per_second * 1_000_000,
                overhead_seconds=ITEM_OVERHEAD_SECONDS,
            )
        return None

    def _work_item_names(self, given: dict[str, Any]) -> tuple[int, Iterable[str]]:
        """How many names the input gives, known before a range makes any, and the names."""
        items, items_key = given.get("items"), given.get("items_key")
        if (items is None) == (items_key is None):
            raise InvalidInputError(
                "input.items", "give items (a list or a range expression) or items_key"
            )
        padding = given.get("padding")
        if padding is not None and (not isinstance(padding, int) or not 0 < padding <= 32):
            raise InvalidInputError("input.padding", "must be a whole number from 1 to 32")
        if padding is not None and not isinstance(items, str):
            raise InvalidInputError("input.padding", "pads the numbers of a range expression")
        prefix = given.get("prefix", "")
        if not isinstance(prefix, str):
            raise InvalidInputError("input.prefix", "must be a string")
        if isinstance(items_key, str) and items_key:
            body = storage.get_bytes(self.settings.input_bucket, items_key)
            listed = workitems.from_lines(body.decode("utf-8").splitlines())
            return len(listed), [prefix + name for name in listed]
        if items_key is not None:
            raise InvalidInputError("input.items_key", "must be a key in the input bucket")
        if isinstance(items, str):
            expression = workitems.parse(items, prefix=prefix, padding=padding)
            return expression.count, expression
        if not isinstance(items, list) or not items:
            raise InvalidInputError("input.items", "give a non-empty list of work-item names")
        for position, value in enumerate(items):
            if not isinstance(value, str) or not value:
                raise InvalidInputError(f"input.items[{position}]", "must be a non-empty string")
        names = [prefix + value for value in dict.fromkeys(items)]
        return len(names), names

    def _split_objects(self, job: Job, given: dict[str, Any]) -> Pieces:
        assert job.split.objects is not None
        prefix = given.get("prefix", job.split.objects.prefix)
        if not isinstance(prefix, str):
            raise InvalidInputError("input.prefix", "must be a string")
        return self._objects_under(job, prefix)

    def _objects_under(self, job: Job, prefix: str) -> Pieces:
        assert job.split.objects is not None
        suffix = job.split.objects.suffix
        bytes_per_second = job.estimate.mb_per_second * 1_000_000
        count = 0
        for entry in storage.iter_objects(self.settings.input_bucket, prefix):
            if not entry.key.endswith(suffix):
                continue
            if count == job.split.objects.max_items:
                raise InvalidInputError("input.prefix", "more objects than the job's max_items")
            count += 1
            seconds = job.estimate.seconds_per_item + entry.size / bytes_per_second
            yield round(seconds, 3), entry.key
        if not count:
            raise InvalidInputError("input.prefix", f"no objects under {prefix!r}")

    def _split_jsonl(self, job: Job, source: SourceRef, size: int) -> list[tuple[float, Payload]]:
        assert job.split.jsonl is not None
        obj = storage.S3Object(source.bucket, source.key, source.version_id)
        if size <= WHOLE_READ_LIMIT:
            whole = storage.read_range(obj, 0, size)

            def read(start: int, end: int) -> bytes:
                return whole[start:end]

        else:

            def read(start: int, end: int) -> bytes:
                return storage.read_range(obj, start, end)

        bytes_per_second = job.estimate.mb_per_second * 1_000_000
        found = formats.identify(read(0, formats.SNIFF_BYTES))
        if found is not formats.TEXT:
            # Compressed bytes have no newlines to split at: one item reads the whole object
            # (gzip) or fails on its first bytes (anything else), so it costs one start-up.
            work = size * GZIP_EXPANSION if found is formats.GZIP else 0
            seconds = round(ITEM_OVERHEAD_SECONDS + work / bytes_per_second, 3)
            return [(seconds, ByteSpan(source=source, start=0, end=size))]
        target = max(1, int(job.split.jsonl.range_mb * 1_000_000))
        return [
            (
                round(ITEM_OVERHEAD_SECONDS + (rng.end - rng.start) / bytes_per_second, 3),
                ByteSpan(source=source, start=rng.start, end=rng.end),
            )
            for rng in newline_aligned_ranges(size, target, read)
        ]

    # -- writing ----------------------------------------------------------------------------

    def _write_plan(
        self, draft: Draft, run_id: str, trigger: Trigger, request: PlanRequest
    ) -> Plan:
        job = draft.job
        key = manifest_key(run_id)
        # Streamed as the items are made: a failure aborts the upload, leaving no manifest.
        with s3_manifest(self.settings.work_bucket, key) as output:
            summary = self._stream(draft, output)
        values = outputs.run_values(job, run_id, draft.params, draft.day)
        run_prefix = outputs.run_output_prefix(job, run_id, values)
        if job.output.replace:
            replacing.snapshot(self.settings, run_id, run_prefix)
        self.ledger.create_run(
            {
                "run_id": run_id,
                "job": job.name,
                "status": RunStatus.RUNNING,
                "trigger": trigger.describe(),
                "execution_id": request.execution_id,
                "started_at": now_iso(),
                "planned_items": summary.items,
                "planned_units": summary.units,
                "planned_bytes": summary.planned_bytes,
                "estimated_seconds": summary.estimated_seconds,
                "routes": summary.routes,
                "params": draft.params,
                "output_prefix": run_prefix,
                "output_values": values if job.output.key is not None else None,
                "manifest_key": key,
            }
        )
        metrics.add_metric(name="RunsPlanned", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="ItemsPlanned", unit=MetricUnit.Count, value=summary.items)
        logger.info(
            "run planned",
            extra={
                "run_id": run_id,
                "job": job.name,
                "items": summary.items,
                "units": summary.units,
            },
        )
        return self._plan_state(
            job, run_id, key=key, redrive=0, summary=summary, params=draft.params
        )

    def _stream(self, draft: Draft, output: ManifestOutput) -> ManifestSummary:
        return write_manifest(
            draft.job,
            draft.pieces,
            output,
            stack=self.settings.stack_name,
            expected_items=draft.expected_items,
        )

    def _plan_state(
        self,
        job: Job,
        run_id: str,
        *,
        key: str,
        redrive: int,
        summary: ManifestSummary,
        params: dict[str, str],
    ) -> Plan:
        return Plan(
            status=PlanStatus.PLANNED,
            run_id=run_id,
            job=job.name,
            units=summary.units,
            items=summary.items,
            manifest={"bucket": self.settings.work_bucket, "key": key},
            result_prefix=results_prefix(run_id, redrive),
            max_concurrency=job.max_concurrency,
            tolerated_failure_percentage=job.tolerated_failure_percent,
            routes=dict(summary.routes),
            params=params,
            environment=[{"Name": name, "Value": value} for name, value in params.items()],
            combine=combine_route(job),
        )


def validate_input(job: Job, given: dict[str, Any]) -> None:
    """Check a start's input against the job's input schema; the error names the field."""
    if job.input_schema is None:
        return
    error = best_match(Draft202012Validator(job.input_schema).iter_errors(given))
    if error is not None:
        path = ".".join(str(part) for part in error.absolute_path)
        raise InvalidInputError(f"input.{path}" if path else "input", error.message)


def check_declared_params(job: Job, given: dict[str, str]) -> None:
    """Refuse a param the job does not declare (a misspelt name would otherwise do nothing)."""
    if job.params_open:
        return
    for name in given:
        if name not in job.params:
            declared = ", ".join(job.params) or "none"
            raise InvalidInputError(
                f"params.{name}",
                f"job {job.name!r} declares no param {name!r} (its params: {declared}; "
                "a job that takes any sets params_open: true)",
            )


def validate_params(params: dict[str, str]) -> None:
    for name, value in params.items():
        if not PARAM_NAME.match(name):
            raise InvalidInputError(f"params.{name}", "must be a valid environment variable name")
        if not isinstance(value, str):
            raise InvalidInputError(f"params.{name}", "must be a string")
    size = sum(len(name) + len(value) for name, value in params.items())
    if size > MAX_PARAMS_BYTES:
        raise InvalidInputError("params", f"{size} bytes is over {MAX_PARAMS_BYTES}")


def _input_date(given: dict[str, Any], scheduled: datetime | None) -> date:
    text = given.get("date")
    if text is None:
        return (scheduled or datetime.now(UTC)).date()
    if isinstance(text, str):
        for layout in ("%Y%m%d", "%Y-%m-%d"):
            try:
                return datetime.strptime(text, layout).date()
            except ValueError:
                continue
    raise InvalidInputError("input.date", "give a date as YYYYMMDD or YYYY-MM-DD")


def build_units(job: Job, items: Sequence[Item], *, stack: str, manifest: int = 0) -> list[Unit]:
    """Group items into work units, as the manifest writer does while a plan streams.

    Container items run one per unit. Lambda items are grouped only as far as needed to keep
    the number of units near the job's concurrency (so parallelism is not lost), and never past
    the job's Lambda time budget or MAX_ITEMS_PER_UNIT.
    """
    output = _Collected()
    writer = ManifestWriter(job, output, stack=stack, manifest=manifest, expected_items=len(items))
    for item in items:
        writer.add_item(msgspec.convert(item.model_dump(exclude_none=True), PlannedItem))
    writer.close()
    return [Unit.model_validate(msgspec.to_builtins(unit)) for unit in output.units()]


class _Collected:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def units(self) -> Iterator[Any]:
        return parse_units(b"".join(self.chunks).splitlines())


def run_of(request: PlanRequest, planner: Planner) -> tuple[str | None, str | None]:
    """The run id and job a request is for, to name on log lines before anything is written;
    (None, None) when it names none or is not valid (planning it reports why)."""
    try:
        target = planner.run_for(request)
    except StepburstError:
        return None, None
    return (target.run_id, target.job) if target is not None else (None, None)
