"""Parquet items: one per row group, read with pyarrow over ranged GETs.

The planner reads only the footer (pyarrow asks for the object's last bytes, then the
metadata), so planning a large file costs a few small reads. An item reads its row group's
column chunks, and gives each row to the job's record function as a dict, through the same
path as a JSON line (:func:`stepburst.records.process_records`): output and rejects are JSON
lines. Values JSON cannot hold as such (timestamps, decimals, bytes) are written as strings.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import orjson

from stepburst import storage
from stepburst.manifest_stream import RowGroup, SourceRef

# Rows are converted this many at a time, so a large row group is not all Python objects.
ROWS_PER_BATCH = 10_000


class S3File(io.RawIOBase):
    """A read-only, seekable file over one S3 object version (ranged GETs)."""

    def __init__(self, obj: storage.S3Object, size: int, etag: str | None = None) -> None:
        self.obj = obj
        self.size = size
        self.etag = etag
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self.size, self.position + len(view))
        if end <= self.position:
            return 0
        data = self.read_at(self.position, end)
        view[: len(data)] = data
        self.position += len(data)
        return len(data)

    def read_at(self, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` of the object (IfMatch its ETag, when known)."""
        return storage.read_range(self.obj, start, end, if_match=self.etag)


def _parquet_file(source: SourceRef, size: int) -> Any:
    import pyarrow.parquet as pq  # a large import, paid only by parquet jobs

    obj = storage.S3Object(source.bucket, source.key, source.version_id)
    return pq.ParquetFile(io.BufferedReader(S3File(obj, size, source.etag), 1024 * 1024))


def plan_row_groups(
    source: SourceRef, size: int, *, bytes_per_second: float, overhead_seconds: float
) -> Iterator[tuple[float, RowGroup]]:
    """The items of a Parquet object: one per row group."""
    metadata = _parquet_file(source, size).metadata
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        # Uncompressed bytes: what the record function's work grows with.
        work = int(group.total_byte_size)
        seconds = round(overhead_seconds + work / bytes_per_second, 3)
        yield seconds, RowGroup(source, index, int(group.num_rows), work)


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def rows_as_json_lines(group: RowGroup, size: int) -> Iterator[bytes]:
    """The row group's rows, each as one JSON line."""
    table = _parquet_file(group.source, size).read_row_group(group.row_group)
    for batch in table.to_batches(max_chunksize=ROWS_PER_BATCH):
        for row in batch.to_pylist():
            yield orjson.dumps(row, default=_default, option=orjson.OPT_NON_STR_KEYS) + b"\n"
