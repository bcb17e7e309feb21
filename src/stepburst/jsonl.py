"""One JSONL work item: transform the records in a byte range of an S3 object.

The range is streamed with ranged GETs, each line goes through the job's transform, output
records are uploaded as they come (multipart, constant memory) and rejects go to a separate
object that exists only when there are rejects. Running the same item again writes the same
two keys, so a retry simply replaces what an earlier attempt left.

A range that starts at the object's first byte is identified first (:mod:`stepburst.formats`):
gzip is decompressed as it streams (the planner gives a gzip object one item, since its bytes
cannot be split at newlines), and another format fails the item with a cause naming it. A job
may bound the share of rejects: a range over it fails, keeping its rejects to look at.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from stepburst.errors import SourceChangedError, StepburstError
from stepburst.formats import TEXT, json_lines
from stepburst.observability import logger
from stepburst.records import RecordStats, load_transform, process_records
from stepburst.storage import MultipartWriter, S3Object, delete_object, iter_range


@dataclass(frozen=True, slots=True)
class JsonlResult:
    stats: RecordStats
    output: S3Object
    rejects: S3Object | None  # None when the range had no rejects
    seconds: float
    compression: str | None = None  # "gzip" when the object was decompressed

    def as_dict(self) -> dict[str, Any]:
        return {
            "stats": self.stats.as_dict(),
            "output": self.output.uri(),
            "rejects": self.rejects.uri() if self.rejects is not None else None,
            "seconds": round(self.seconds, 3),
            "compression": self.compression,
        }


class TooManyRejectsError(StepburstError):
    """A range's share of rejects is over its job's ``max_reject_percent``."""


def reject_bound_error(
    stats: RecordStats, max_reject_percent: float, rejects: S3Object
) -> TooManyRejectsError | None:
    """The error for a range whose rejects are over the bound, or None.

    The share counts the lines that held something (records, rejects and filtered records);
    blank lines are not data.
    """
    considered = stats.records + stats.rejects + stats.filtered
    if not considered:
        return None
    percent = 100.0 * stats.rejects / considered
    if percent <= max_reject_percent:
        return None
    errors = ", ".join(f"{error}: {count}" for error, count in sorted(stats.reject_errors.items()))
    return TooManyRejectsError(
        f"{stats.rejects} of {considered} lines rejected ({percent:.1f}%), over the job's "
        f"max_reject_percent of {max_reject_percent:g} ({errors}); the rejects are in "
        f"{rejects.uri()}"
    )


class _Counted:
    """The chunks of a read, counting their bytes as they pass."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = chunks
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.size += len(chunk)
            yield chunk


class _LazyWriter:
    """A :class:`MultipartWriter` created on the first write, so no rejects means no object."""

    def __init__(self, target: S3Object) -> None:
        self.target = target
        self.writer: MultipartWriter | None = None

    def write(self, data: bytes) -> None:
        if self.writer is None:
            self.writer = MultipartWriter(self.target.bucket, self.target.key)
        self.writer.write(data)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def process_jsonl_range(  # noqa: PLR0917 - the planner's item fields, in order
    source: S3Object,
    start: int,
    end: int,
    transform_reference: str,
    output: S3Object,
    rejects: S3Object,
    *,
    if_match: str | None = None,
    max_reject_percent: float | None = None,
) -> JsonlResult:
    """Transform bytes ``[start, end)`` of ``source`` (whole lines) into ``output``.

    ``if_match`` pins every read to the ETag the planner split, so a source replaced since
    raises :class:`~stepburst.errors.SourceChangedError`. Rejects, if any, are written to
    ``rejects``; otherwise any ``rejects`` object an earlier attempt left is deleted. Over
    ``max_reject_percent``, :class:`TooManyRejectsError` is raised once the rejects are
    written, and no output is left.
    """
    started = time.perf_counter()
    transform = load_transform(transform_reference)
    reject_writer = _LazyWriter(rejects)
    with (
        MultipartWriter(output.bucket, output.key) as output_writer,
        closing(iter_range(source, start, end, if_match=if_match)) as pieces,
    ):
        read = _Counted(pieces)
        try:
            chunks: Iterable[bytes] = read
            found = TEXT
            if start == 0:
                chunks, found = json_lines(read, source.uri())
            stats = process_records(
                chunks,
                transform,
                output_writer.write,
                reject_writer.write,
                first_offset=start,
            )
            if read.size != end - start:
                raise SourceChangedError(
                    f"{source.uri()} has {read.size} bytes in [{start}, {end}), "
                    f"expected {end - start}; it changed or is shorter than planned"
                )
            reject_writer.close()
        except BaseException:
            reject_writer.abort()
            raise
        too_many = (
            None
            if max_reject_percent is None
            else reject_bound_error(stats, max_reject_percent, rejects)
        )
        if too_many is not None:
            output_writer.abort()
    if too_many is not None:
        delete_object(output)  # what an earlier attempt may have left
        raise too_many
    if stats.rejects:
        written_rejects: S3Object | None = rejects
    else:
        written_rejects = None
        delete_object(rejects)
    compression = None if found is TEXT else found.name
    result = JsonlResult(stats, output, written_rejects, time.perf_counter() - started, compression)
    logger.info(
        "jsonl range processed",
        extra={
            "source": source.uri(),
            "start": start,
            "end": end,
            "transform": transform_reference,
            "output": output.uri(),
            "lines": stats.lines,
            "records": stats.records,
            "rejects": stats.rejects,
            "filtered": stats.filtered,
            "blank_lines": stats.blank_lines,
            "bytes_in": stats.bytes_in,
            "bytes_out": stats.bytes_out,
            "compression": compression,
            "seconds": round(result.seconds, 3),
        },
    )
    return result
