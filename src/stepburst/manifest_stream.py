"""Write a run's manifest while its items are made, in constant memory whatever the run's size.

Items arrive one at a time (from a range expression, a listing, a split function that yields
millions); each is routed once, grouped into units like :func:`stepburst.planning.build_units`
and encoded with msgspec straight to a writer (a multipart upload to S3, or nothing for a
preview). No per-item pydantic model is built: the structs here encode to exactly the JSON
shape :class:`stepburst.manifest.Unit` reads.

The manifest is still one JSON array (the Distributed Map's ItemReader contract, InputType
JSON), written one unit per line: ``[`` alone on the first line, each unit on a line of its
own (``,`` before every unit but the first) and ``]`` on the last. So :func:`iter_units` reads
it back a line at a time, never holding the array.

Grouping Lambda items needs how many Lambda items the run has (``per_unit`` keeps units near
the job's concurrency). Lambda items are held back until that is known: either the stream
ends, or more than ``(MAX_ITEMS_PER_UNIT - 1) * max_concurrency`` have arrived, which already
means ``MAX_ITEMS_PER_UNIT`` per unit. Above :data:`LOOKAHEAD_LIMIT` held items (only jobs with
a ``max_concurrency`` over 1,010) the count given up front, or else the items held, decides; a
smaller ``per_unit`` makes more units, never fewer than the concurrency. Container items are
units of their own and are written as they come.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import msgspec

from stepburst import storage
from stepburst.job_machines import has_own_machines, own_queue
from stepburst.jobs import Job
from stepburst.layout import item_sort_key, job_definition, job_queue, job_task_definition

Route = Literal["lambda", "ecs", "batch"]
# A Lambda unit's payload must stay far below the 256 KiB state limit.
MAX_ITEMS_PER_UNIT = 100
# At most this many Lambda items are held back while their count is unknown.
LOOKAHEAD_LIMIT = 100_000
# How many of the first items a preview shows.
SAMPLE_SIZE = 10
# Manifest parts: S3's minimum is 5 MiB; small parts and few in flight keep Plan's memory low.
MANIFEST_PART_SIZE = 8 * 1024 * 1024
MANIFEST_UPLOAD_WORKERS = 2


class SourceRef(msgspec.Struct, frozen=True, omit_defaults=True):
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None


class ByteSpan(msgspec.Struct, frozen=True, omit_defaults=True):
    """Bytes ``[start, end)`` of a JSON Lines object: whole lines."""

    source: SourceRef
    start: int
    end: int


class CsvSpan(msgspec.Struct, frozen=True, omit_defaults=True):
    """Bytes ``[start, end)`` of a CSV object (whole records); its header is ``[0, header_end)``."""

    source: SourceRef
    start: int
    end: int
    header_end: int
    delimiter: str = ","


class RowGroup(msgspec.Struct, frozen=True, omit_defaults=True):
    """One row group of a Parquet object."""

    source: SourceRef
    row_group: int
    rows: int
    bytes: int


Payload = str | ByteSpan | CsvSpan | RowGroup


class PlannedItem(msgspec.Struct, omit_defaults=True):
    index: int
    sk: str
    estimated_seconds: float
    jsonl: ByteSpan | None = None
    value: str | None = None
    csv: CsvSpan | None = None
    parquet: RowGroup | None = None

    @property
    def size_bytes(self) -> int:
        span = self.jsonl or self.csv
        if span is not None:
            return span.end - span.start
        return self.parquet.bytes if self.parquet is not None else 0

    def describe(self) -> str:
        """What the item is, for a preview."""
        if self.value is not None:
            return self.value
        span = self.jsonl or self.csv
        if span is not None:
            return f"bytes {span.start}-{span.end}"
        if self.parquet is not None:
            return f"row group {self.parquet.row_group} ({self.parquet.rows} rows)"
        return ""


class PlannedUnit(msgspec.Struct):
    index: int
    manifest: int
    route: str
    fallback: str
    max_attempts: int
    timeout_seconds: int
    items: list[PlannedItem]
    ecs: dict[str, Any]
    batch: dict[str, Any]


def make_item(index: int, seconds: float, payload: Payload) -> PlannedItem:
    sk = item_sort_key(index)
    if isinstance(payload, str):
        return PlannedItem(index, sk, seconds, value=payload)
    if isinstance(payload, ByteSpan):
        return PlannedItem(index, sk, seconds, jsonl=payload)
    if isinstance(payload, CsvSpan):
        return PlannedItem(index, sk, seconds, csv=payload)
    return PlannedItem(index, sk, seconds, parquet=payload)


class ManifestOutput(Protocol):
    def write(self, data: bytes) -> None: ...


class DiscardedManifest:
    """A preview's manifest: its size is counted, its bytes are not kept."""

    def __init__(self) -> None:
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        self.bytes_written += len(data)


def s3_manifest(bucket: str, key: str) -> storage.MultipartWriter:
    return storage.MultipartWriter(
        bucket,
        key,
        part_size=MANIFEST_PART_SIZE,
        max_workers=MANIFEST_UPLOAD_WORKERS,
        content_type="application/json",
    )


@dataclass(frozen=True, slots=True)
class SampleItem:
    index: int
    what: str
    route: str
    estimated_seconds: float


@dataclass(slots=True)
class ManifestSummary:
    """What a plan holds, counted as it was written: all a preview or the ledger needs."""

    items: int = 0
    units: int = 0
    planned_bytes: int = 0
    estimated_seconds: float = 0.0
    longest_item_seconds: float = 0.0
    routes: dict[str, int] = field(default_factory=dict)
    unit_routes: dict[str, int] = field(default_factory=dict)
    unit_seconds: dict[str, float] = field(default_factory=dict)
    sample: list[SampleItem] = field(default_factory=list)


def route_for(job: Job, estimated_seconds: float) -> Route:
    platform = job.compute.platform
    if platform != "auto":
        return platform
    return "lambda" if estimated_seconds <= job.compute.lambda_max_seconds else "ecs"


def unit_compute(job: Job, stack: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A unit's ECS and Batch settings, the same for every unit of a job: the job's own task
    and job definitions (kept by the JobCompute custom resource) and the queue of its capacity."""
    compute = job.compute
    ecs = {
        "task_definition": job_task_definition(stack, job.name),
        "cpu": str(compute.cpu),
        "memory": str(compute.memory_mb),
        # Fargate Spot runs x86_64 only: arm64 workers run on on-demand Fargate.
        "capacity_provider_strategy": [
            {"CapacityProvider": "FARGATE_SPOT" if compute.uses_spot else "FARGATE", "Weight": 1}
        ],
    }
    capacity = compute.batch.capacity if compute.batch is not None else "fargate"
    gpus = compute.batch.gpus if compute.batch is not None else 0

    def queue(spot: bool) -> str:
        if has_own_machines(job):
            # Its own environment is Spot or on-demand as declared; the shared on-demand queue
            # has neither its instance types nor its disk, so Spot failures stay on it.
            return own_queue(stack, job)
        return job_queue(stack, capacity=capacity, architecture=compute.architecture, spot=spot)

    batch = {
        "job_definition": job_definition(stack, job.name),
        "job_queue": queue(compute.uses_spot),
        "on_demand_queue": queue(False),
        "resource_requirements": [
            {"Type": "VCPU", "Value": f"{compute.cpu / 1024:g}"},
            {"Type": "MEMORY", "Value": str(compute.memory_mb)},
            *([{"Type": "GPU", "Value": str(gpus)}] if gpus else []),
        ],
    }
    return ecs, batch


class ManifestWriter:
    """Route, group and write items as they come; :meth:`close` ends the array."""

    def __init__(
        self,
        job: Job,
        output: ManifestOutput,
        *,
        stack: str,
        manifest: int = 0,
        expected_items: int | None = None,
    ) -> None:
        self.job = job
        self.output = output
        self.manifest = manifest
        self.expected_items = expected_items
        self.summary = ManifestSummary()
        compute = job.compute
        self._fallback = "batch" if compute.platform == "batch" else "ecs"
        self._max_attempts = job.retries + 1
        self._timeout = compute.container_timeout_seconds
        self._lambda_budget = compute.lambda_max_seconds
        self._ecs, self._batch = unit_compute(job, stack)
        self._encoder = msgspec.json.Encoder()
        self._concurrency = job.max_concurrency
        self._decided_at = min(LOOKAHEAD_LIMIT, (MAX_ITEMS_PER_UNIT - 1) * self._concurrency + 1)
        self._per_unit: int | None = None
        # A job that names its platform routes every item there.
        self._route: Route | None = None if compute.platform == "auto" else compute.platform
        self._held: list[PlannedItem] = []
        self._current: list[PlannedItem] = []
        self._budget = 0.0
        self._next_index = 0

    def add(self, seconds: float, payload: Payload) -> None:
        """A new item, numbered in the order items come."""
        index = self._next_index
        self._next_index = index + 1
        if isinstance(payload, str):
            # The common case (names), made without the generic dispatch.
            item = PlannedItem(index, item_sort_key(index), seconds, value=payload)
        else:
            item = make_item(index, seconds, payload)
        self._add(item, seconds)

    def add_item(self, item: PlannedItem) -> None:
        """An item that keeps its number (a redrive's)."""
        self._next_index = max(self._next_index, item.index + 1)
        self._add(item, item.estimated_seconds)

    def _add(self, item: PlannedItem, seconds: float) -> None:
        # The one routing decision for this item.
        route = self._route if self._route is not None else route_for(self.job, seconds)
        summary = self.summary
        summary.items += 1
        if item.value is None:
            summary.planned_bytes += item.size_bytes
        summary.estimated_seconds += seconds
        if seconds > summary.longest_item_seconds:  # noqa: PLR1730 - cheaper than max()
            summary.longest_item_seconds = seconds
        routes = summary.routes
        routes[route] = routes.get(route, 0) + 1
        if len(summary.sample) < SAMPLE_SIZE:
            summary.sample.append(SampleItem(item.index, item.describe(), route, seconds))
        if route != "lambda":
            self._write_unit(route, [item])
        elif self._per_unit is not None:
            self._group(item, seconds)
        else:
            self._held.append(item)
            if len(self._held) >= self._decided_at:
                counted = len(self._held)
                if self._decided_at == LOOKAHEAD_LIMIT and self.expected_items is not None:
                    counted = max(counted, self.expected_items)
                self._release(counted)

    def close(self) -> ManifestSummary:
        if self._per_unit is None:
            self._release(len(self._held))
        if self._current:
            self._write_unit("lambda", self._current)
            self._current = []
        self.output.write(b"\n]\n" if self.summary.units else b"[]\n")
        self.summary.estimated_seconds = round(self.summary.estimated_seconds, 3)
        return self.summary

    def _release(self, lambda_items: int) -> None:
        self._per_unit = min(
            MAX_ITEMS_PER_UNIT, max(1, math.ceil(lambda_items / self._concurrency))
        )
        held, self._held = self._held, []
        for item in held:
            self._group(item, item.estimated_seconds)

    def _group(self, item: PlannedItem, seconds: float) -> None:
        current = self._current
        if current and (
            len(current) >= self._per_unit  # type: ignore[operator]
            or self._budget + seconds > self._lambda_budget
        ):
            self._write_unit("lambda", current)
            current = self._current = []
            self._budget = 0.0
        current.append(item)
        self._budget += seconds

    def _write_unit(self, route: str, items: list[PlannedItem]) -> None:
        summary = self.summary
        unit = PlannedUnit(
            index=summary.units,
            manifest=self.manifest,
            route=route,
            fallback=self._fallback,
            max_attempts=self._max_attempts,
            timeout_seconds=self._timeout,
            items=items,
            ecs=self._ecs,
            batch=self._batch,
        )
        self.output.write((b"\n," if summary.units else b"[\n") + self._encoder.encode(unit))
        summary.units += 1
        summary.unit_routes[route] = summary.unit_routes.get(route, 0) + 1
        summary.unit_seconds[route] = summary.unit_seconds.get(route, 0.0) + sum(
            item.estimated_seconds for item in items
        )


def write_manifest(
    job: Job,
    items: Iterable[tuple[float, Payload]],
    output: ManifestOutput,
    *,
    stack: str,
    expected_items: int | None = None,
) -> ManifestSummary:
    """Number, route, group and write ``(estimated seconds, payload)`` pairs."""
    writer = ManifestWriter(job, output, stack=stack, expected_items=expected_items)
    add = writer.add
    for seconds, payload in items:
        add(seconds, payload)
    return writer.close()


_unit_decoder = msgspec.json.Decoder(PlannedUnit)
_units_decoder = msgspec.json.Decoder(list[PlannedUnit])


def parse_units(lines: Iterable[bytes]) -> Iterator[PlannedUnit]:
    """Units from a manifest's lines: one unit a line, or (as first written) the whole array
    on one line."""
    for raw in lines:
        line = raw.strip()
        if line in {b"", b"[", b"]", b"[]"}:
            continue
        if line.startswith(b"["):
            yield from _units_decoder.decode(line)
            continue
        yield _unit_decoder.decode(line[1:] if line.startswith(b",") else line)


def iter_units(bucket: str, key: str) -> Iterator[PlannedUnit]:
    """A stored manifest's units, read a line at a time."""
    return parse_units(storage.iter_lines(bucket, key))
