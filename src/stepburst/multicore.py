"""One JSONL item on several vCPUs: one process per vCPU, each on a newline-aligned sub-range.

The record processor is CPU-bound Python, so one process uses one vCPU whatever the task has.
:func:`process_jsonl_range_on_cpus` splits the item's range into as many sub-ranges as there
are vCPUs to use, each starting at a line's first byte, and runs :func:`process_segment` in a
process per sub-range. The item's output stays ONE object, identical in content and order to
what one process writes:

* the parent starts one multipart upload; sub-range ``k`` owns part numbers
  ``[k * block + 1, (k + 1) * block]`` (S3 orders parts by number and allows gaps);
* each process uploads whole parts of its own output, but holds back its first ``part_size``
  bytes (``k > 0``) and the bytes after its last whole part, and returns them;
* the parent uploads each junction (one process's tail and the next one's head, at least
  ``part_size`` and so above S3's 5 MiB minimum) under the first number of the later block,
  and the last tail as the final part, then completes the upload.

The parent is one of the processes: it starts the others first, then processes the first
sub-range itself while they start and build their S3 clients, so their start-up overlaps useful
work instead of preceding it. The first sub-range is made larger by about what the parent
processes in that time (:data:`CHILD_HEAD_START_BYTES`), so that all end together. Children
are forked from a fork server that has imported the package (see :func:`child_context`), so
after a process's first item they start in a fifth of the time.

Rejects go to a local file per process; the parent copies them in order into the item's rejects
object, renumbering ``item_line`` (1-based within the item) by the lines before each sub-range.

How many vCPUs: a container's CPU quota (cgroup), else the CPUs the process may run on. On
Lambda, CPU comes with memory: the function has the equivalent of one vCPU at 1,769 MB, and
proportionally more up to 10,240 MB (about 5.8 vCPUs of credits over 6 visible vCPUs); see
https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html. So a Lambda unit uses
``floor(memory / 1769)`` processes (at least 1):

=============  ================  =========
memory (MB)    vCPU-equivalents  processes
=============  ================  =========
128 - 1768     below 1           1
1769 - 3537    1 - 2             1
3538 - 5306    2 - 3             2
5307 - 7075    3 - 4             3
7076 - 8844    4 - 5             4
8845 - 10240   5 - 5.8           5
=============  ================  =========
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from contextlib import closing, suppress
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from stepburst.aws import client
from stepburst.errors import SourceChangedError
from stepburst.formats import SNIFF_BYTES, TEXT, identify, json_lines
from stepburst.jsonl import (
    JsonlResult,
    _Counted,
    _LazyWriter,
    process_jsonl_range,
    reject_bound_error,
)
from stepburst.observability import logger
from stepburst.records import RecordStats, load_transform, process_records
from stepburst.splitting import ByteRange, newline_aligned_ranges
from stepburst.storage import (
    DEFAULT_PART_SIZE,
    MAX_PARTS,
    NDJSON,
    S3Object,
    abort_multipart_upload,
    complete_multipart_upload,
    create_multipart_upload,
    delete_object,
    iter_range,
    put_bytes,
    read_range,
    upload_part,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from types_boto3_s3.type_defs import CompletedPartTypeDef

# The equivalent of one vCPU on Lambda (see the module doc).
LAMBDA_MB_PER_VCPU = 1769
# Below this many bytes per process, starting processes costs more than it saves. A spawned
# process spends about 0.66 s of CPU importing the package and making its S3 client before it
# reads a byte (measured), while the example job processes about 200 MB per CPU second: the
# start-up alone is worth ~130 MB, so a share is made at least twice that.
MIN_BYTES_PER_PROCESS = 256 * 1024 * 1024
# What the parent processes while a child starts (at ~200 MB per CPU-s, measured): the
# parent's own share is larger by this much, each child's smaller. A spawned child, or the
# first ones a fork server forks (it imports the package first), take ~0.66 CPU-s; a child
# forked from a running fork server ~0.13 CPU-s.
CHILD_HEAD_START_BYTES = 128 * 1024 * 1024
FORKED_CHILD_HEAD_START_BYTES = 32 * 1024 * 1024
# What the fork server imports once for all the children it forks (see child_context).
CHILD_PRELOAD = ["stepburst.multicore"]
# Whole parts a process keeps in flight while it goes on processing.
UPLOADS_IN_FLIGHT = 3


def lambda_processes(memory_mb: int) -> int:
    """Processes a Lambda function of ``memory_mb`` runs an item with (see the module doc)."""
    return max(1, memory_mb // LAMBDA_MB_PER_VCPU)


def usable_cpus() -> int:
    """vCPUs this process can keep busy: Lambda's share, a container's quota, or its CPUs."""
    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    if memory and memory.isdigit():
        return lambda_processes(int(memory))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = _cgroup_cpu_quota()
    if quota is not None:
        return max(1, min(cpus or 1, math.floor(quota)))
    return max(1, cpus or 1)


def _cgroup_cpu_quota() -> float | None:
    """The CPU quota in vCPUs from cgroup v2 ``cpu.max`` or v1 ``cfs_quota``, None if unset."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        v1 = Path("/sys/fs/cgroup/cpu")
        quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
        period_us = int((v1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 else quota_us / period_us


@dataclass(frozen=True, slots=True)
class SegmentTask:
    """One process's share of an item: bytes ``[start, end)`` and where its output goes."""

    index: int
    source: S3Object
    start: int
    end: int
    if_match: str | None
    transform: str
    output: S3Object
    upload_id: str
    first_part: int
    last_part: int
    part_size: int
    rejects_path: str


@dataclass(frozen=True, slots=True)
class SegmentResult:
    stats: RecordStats
    head: bytes  # output before the first part this process uploaded (all of it if none)
    tail: bytes  # output after its last uploaded part
    parts: list[CompletedPartTypeDef]


class _SegmentWriter:
    """Upload whole parts of one process's output under its own part numbers."""

    def __init__(self, task: SegmentTask) -> None:
        self.task = task
        self.head: bytes | None = None if task.index > 0 else b""
        self.buffer = bytearray()
        self.next_part = task.first_part + (1 if task.index > 0 else 0)
        self.parts: list[CompletedPartTypeDef] = []
        self.pool = ThreadPoolExecutor(UPLOADS_IN_FLIGHT, thread_name_prefix="stepburst-part")
        self.in_flight: set[Future[CompletedPartTypeDef]] = set()

    def write(self, data: bytes) -> None:
        self.buffer += data
        size = self.task.part_size
        while len(self.buffer) >= size:
            # One copy: slicing the bytearray first would copy the part twice.
            with memoryview(self.buffer) as whole, whole[:size] as view:
                part = bytes(view)
            del self.buffer[:size]
            if self.head is None:  # the junction's share, uploaded by the parent
                self.head = part
                continue
            self._submit(part)

    def _submit(self, part: bytes) -> None:
        # One number is kept for the last tail of the last block.
        if self.next_part >= self.task.last_part:
            raise ValueError(f"{self.task.output.uri()} needs more parts; raise the part size")
        while len(self.in_flight) >= UPLOADS_IN_FLIGHT:
            self._collect(wait(self.in_flight, return_when=FIRST_COMPLETED).done)
        number = self.next_part
        self.next_part += 1
        task = self.task
        self.in_flight.add(self.pool.submit(upload_part, task.output, task.upload_id, number, part))

    def _collect(self, done: Iterable[Future[CompletedPartTypeDef]]) -> None:
        for future in list(done):
            self.in_flight.discard(future)
            self.parts.append(future.result())

    def finish(self) -> tuple[bytes, bytes, list[CompletedPartTypeDef]]:
        try:
            self._collect(wait(self.in_flight).done)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        if self.head is None:  # never reached a whole part: everything is the head
            return bytes(self.buffer), b"", []
        if not self.parts:  # only the held-back head: keep it and what follows together
            return self.head + bytes(self.buffer), b"", []
        return self.head, bytes(self.buffer), self.parts


def process_segment(task: SegmentTask) -> SegmentResult:
    """Run in a child process: process the task's sub-range as the item would."""
    transform = load_transform(task.transform)
    writer = _SegmentWriter(task)
    try:
        with (
            Path(task.rejects_path).open("wb") as rejects,
            closing(
                iter_range(task.source, task.start, task.end, if_match=task.if_match)
            ) as pieces,
        ):
            read = _Counted(pieces)
            chunks: Iterable[bytes] = read
            if task.start == 0:  # the parent checked it is text; this keeps the same checks
                chunks, _ = json_lines(read, task.source.uri())

            def write_reject(line: bytes) -> None:
                rejects.write(line)

            stats = process_records(
                chunks, transform, writer.write, write_reject, first_offset=task.start
            )
            if read.size != task.end - task.start:
                raise SourceChangedError(
                    f"{task.source.uri()} has {read.size} bytes in [{task.start}, {task.end}), "
                    f"expected {task.end - task.start}; it changed or is shorter than planned"
                )
    finally:
        head, tail, parts = writer.finish()
    return SegmentResult(stats, head, tail, parts)


def process_jsonl_range_on_cpus(  # noqa: PLR0917 - the planner's item fields, in order
    source: S3Object,
    start: int,
    end: int,
    transform_reference: str,
    output: S3Object,
    rejects: S3Object,
    *,
    if_match: str | None = None,
    max_reject_percent: float | None = None,
    processes: int | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    min_bytes_per_process: int = MIN_BYTES_PER_PROCESS,
    head_start_bytes: int | None = None,
) -> JsonlResult:
    """:func:`~stepburst.jsonl.process_jsonl_range`, with one process per usable vCPU.

    Falls back to one process for a range too short to share, a compressed object (its bytes
    cannot be split at newlines) or one vCPU. Same output object, rejects object, errors and
    result as one process. The parent processes the first sub-range, ``head_start_bytes``
    larger than an even share (at most half the range larger; by default as long as the
    children take to start), while the others start.
    """
    wanted = usable_cpus() if processes is None else processes
    count = min(wanted, (end - start) // max(1, min_bytes_per_process))

    def one_process() -> JsonlResult:
        return process_jsonl_range(
            source,
            start,
            end,
            transform_reference,
            output,
            rejects,
            if_match=if_match,
            max_reject_percent=max_reject_percent,
        )

    if count < 2:
        return one_process()
    if start == 0:
        head = read_range(source, 0, min(end, SNIFF_BYTES), if_match=if_match)
        if identify(head) is not TEXT:
            return one_process()
    load_transform(transform_reference)  # a bad reference fails here, named, not in a child
    started = time.perf_counter()
    context = child_context()
    if head_start_bytes is None:
        head_start_bytes = (
            FORKED_CHILD_HEAD_START_BYTES
            if context.get_start_method() == "forkserver" and _fork_server.started
            else CHILD_HEAD_START_BYTES
        )
    try:
        pool = ProcessPoolExecutor(
            count - 1,
            mp_context=context,
            initializer=warm_up_child,
            initargs=(transform_reference, dict(os.environ), list(sys.path)),
        )
    except OSError as exc:
        # The pool's queues need POSIX semaphores, which Lambda lacks (no /dev/shm): ENOSYS.
        logger.warning(
            "cannot start processes for a jsonl range; processing it on one",
            extra={"source": source.uri(), "error": str(exc)},
        )
        return one_process()
    with pool:
        # A pool spawns a process per task while none is idle: these start the children now,
        # so they import and connect while the parent plans the shares below.
        for _ in range(count - 1):
            pool.submit(os.getpid)

        def read(low: int, high: int) -> bytes:
            return read_range(source, start + low, start + high, if_match=if_match)

        ranges = share_ranges(end - start, count, head_start_bytes, read)
        _fork_server.started = True
        if len(ranges) < 2:
            return one_process()
        stats, processes_used = _process_shares(
            pool,
            ranges,
            source,
            start,
            if_match,
            transform_reference,
            output,
            rejects,
            max_reject_percent,
            part_size,
        )
    item = JsonlResult(
        stats, output, rejects if stats.rejects else None, time.perf_counter() - started
    )
    logger.info(
        "jsonl range processed on several processes",
        extra={
            "source": source.uri(),
            "start": start,
            "end": end,
            "processes": processes_used,
            "transform": transform_reference,
            "output": output.uri(),
            "lines": stats.lines,
            "records": stats.records,
            "rejects": stats.rejects,
            "bytes_in": stats.bytes_in,
            "bytes_out": stats.bytes_out,
            "seconds": round(item.seconds, 3),
        },
    )
    return item


class _ForkServer:
    """Whether this process has started children: its fork server, if it uses one, runs."""

    started = False


_fork_server = _ForkServer()


def child_context() -> BaseContext:
    """How an item starts its children: forked from a fork server, else spawned.

    Never forked from the parent itself, which holds threads and AWS clients that a fork would
    copy mid-use. The fork server is a fresh single-threaded interpreter that imports the
    package once (on the first item of a process's life) and forks each child from there: a
    child then starts in ~0.13 CPU-s instead of the ~0.6 a spawned one spends importing.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(CHILD_PRELOAD)  # no effect once the server runs
    return context


def warm_up_child(transform_reference: str, environment: dict[str, str], path: list[str]) -> None:
    """In each child as it starts: take the parent's environment and import path (a forked
    child has the fork server's, from when it started: secrets or a jobs path set since would
    be missing), import the transform and build the S3 client it reads with."""
    os.environ.clear()
    os.environ.update(environment)
    sys.path[:] = path
    load_transform(transform_reference)
    client("s3")


def share_ranges(
    size: int, count: int, head_start: int, read: Callable[[int, int], bytes]
) -> list[ByteRange]:
    """``count`` newline-aligned ranges of ``[0, size)``, the first ``head_start`` larger
    than an even share (at most ``size / 2``) and the others even (fewer if lines are long)."""
    head_start = max(0, min(head_start, size // 2))
    first_target = max(1, (size + (count - 1) * head_start) // count)
    first = newline_aligned_ranges(size, first_target, read)[0]
    rest = size - first.end
    if not rest:
        return [first]
    target = max(1, math.ceil(rest / (count - 1)))
    others = newline_aligned_ranges(
        rest, target, lambda low, high: read(first.end + low, first.end + high)
    )
    return [first, *(ByteRange(first.end + piece.start, first.end + piece.end) for piece in others)]


def _process_shares(  # noqa: PLR0917 - the item's fields, passed through
    pool: ProcessPoolExecutor,
    ranges: list[ByteRange],
    source: S3Object,
    start: int,
    if_match: str | None,
    transform_reference: str,
    output: S3Object,
    rejects: S3Object,
    max_reject_percent: float | None,
    part_size: int,
) -> tuple[RecordStats, int]:
    """Run the children on ``ranges[1:]`` and the parent on ``ranges[0]``, then join them;
    the stats and the number of processes."""
    block = MAX_PARTS // len(ranges)
    upload_id = create_multipart_upload(output)
    try:
        with tempfile.TemporaryDirectory(prefix="stepburst-rejects-") as scratch:
            tasks = [
                SegmentTask(
                    index=index,
                    source=source,
                    start=start + piece.start,
                    end=start + piece.end,
                    if_match=if_match,
                    transform=transform_reference,
                    output=output,
                    upload_id=upload_id,
                    first_part=index * block + 1,
                    last_part=(index + 1) * block,
                    part_size=part_size,
                    rejects_path=str(Path(scratch) / f"{index}.jsonl"),
                )
                for index, piece in enumerate(ranges)
            ]
            children = [pool.submit(process_segment, task) for task in tasks[1:]]
            try:
                results = [process_segment(tasks[0])]
            except BaseException:
                for child in children:
                    child.cancel()
                raise
            results.extend(child.result() for child in children)
            stats = RecordStats()
            for result in results:
                stats.add(result.stats)
            too_many = (
                None
                if max_reject_percent is None
                else reject_bound_error(stats, max_reject_percent, rejects)
            )
            _copy_rejects(tasks, results, rejects)
        if too_many is not None:
            abort_multipart_upload(output, upload_id)
            delete_object(output)
            raise too_many
        _complete(output, upload_id, tasks, results, part_size)
    except BaseException:
        with suppress(Exception):
            abort_multipart_upload(output, upload_id)
        raise
    if not stats.rejects:
        delete_object(rejects)
    return stats, len(tasks)


def _complete(
    output: S3Object,
    upload_id: str,
    tasks: list[SegmentTask],
    results: list[SegmentResult],
    part_size: int,
) -> None:
    """Upload the junctions and the last tail, then complete (or put a small object)."""
    parts: list[CompletedPartTypeDef] = []
    pending = bytearray()
    for task, result in zip(tasks, results, strict=True):
        pending += result.head
        if result.parts:
            if pending:  # at least part_size: this process held back a whole part
                parts.append(upload_part(output, upload_id, task.first_part, bytes(pending)))
            parts.extend(result.parts)
            pending = bytearray(result.tail)
    if not parts and len(pending) < part_size:
        abort_multipart_upload(output, upload_id)
        put_bytes(output.bucket, output.key, bytes(pending), content_type=NDJSON)
        return
    if pending or not parts:
        parts.append(upload_part(output, upload_id, tasks[-1].last_part, bytes(pending)))
    complete_multipart_upload(output, upload_id, parts)


def _copy_rejects(
    tasks: list[SegmentTask], results: list[SegmentResult], rejects: S3Object
) -> None:
    """Each process's rejects in order, ``item_line`` counted from the item's first line."""
    writer = _LazyWriter(rejects)
    lines_before = 0
    try:
        for task, result in zip(tasks, results, strict=True):
            if result.stats.rejects:
                with Path(task.rejects_path).open("rb") as written:
                    for line in written:
                        document: dict[str, Any] = orjson.loads(line)
                        document["item_line"] += lines_before
                        writer.write(orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE))
            lines_before += result.stats.lines
        writer.close()
    except BaseException:
        writer.abort()
        raise
