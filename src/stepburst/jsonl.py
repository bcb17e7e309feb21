"""One JSONL work item: transform the records in a byte range of an S3 object.

The range is streamed with ranged GETs, each line goes through the job's transform, output
records are uploaded as they come (multipart, constant memory) and rejects go to a separate
object that exists only when there are rejects. Running the same item again writes the same
two keys, so a retry simply replaces what an earlier attempt left.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from stepburst.errors import SourceChangedError
from stepburst.observability import logger
from stepburst.records import RecordStats, load_transform, process_records
from stepburst.storage import MultipartWriter, S3Object, delete_object, iter_range


@dataclass(frozen=True, slots=True)
class JsonlResult:
    stats: RecordStats
    output: S3Object
    rejects: S3Object | None  # None when the range had no rejects
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "stats": self.stats.as_dict(),
            "output": self.output.uri(),
            "rejects": self.rejects.uri() if self.rejects is not None else None,
            "seconds": round(self.seconds, 3),
        }


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
) -> JsonlResult:
    """Transform bytes ``[start, end)`` of ``source`` (whole lines) into ``output``.

    ``if_match`` pins every read to the ETag the planner split, so a source replaced since
    raises :class:`~stepburst.errors.SourceChangedError`. Rejects, if any, are written to
    ``rejects``; otherwise any ``rejects`` object an earlier attempt left is deleted.
    """
    started = time.perf_counter()
    transform = load_transform(transform_reference)
    reject_writer = _LazyWriter(rejects)
    with (
        MultipartWriter(output.bucket, output.key) as output_writer,
        closing(iter_range(source, start, end, if_match=if_match)) as pieces,
    ):
        try:
            stats = process_records(
                pieces,
                transform,
                output_writer.write,
                reject_writer.write,
                first_offset=start,
            )
            if stats.bytes_in != end - start:
                raise SourceChangedError(
                    f"{source.uri()} has {stats.bytes_in} bytes in [{start}, {end}), "
                    f"expected {end - start}; it changed or is shorter than planned"
                )
            reject_writer.close()
        except BaseException:
            reject_writer.abort()
            raise
    if stats.rejects:
        written_rejects: S3Object | None = rejects
    else:
        written_rejects = None
        delete_object(rejects)
    result = JsonlResult(stats, output, written_rejects, time.perf_counter() - started)
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
            "seconds": round(result.seconds, 3),
        },
    )
    return result
