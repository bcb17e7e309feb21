"""Run a CSV range or a Parquet row group through the job's record function.

Records become JSON lines (:mod:`stepburst.csv_records`, :mod:`stepburst.parquet_records`)
and take the jsonl split's path from there: :func:`stepburst.records.process_records` with
the same transform, rejects and reject bound; output and rejects are uploaded as they come.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from stepburst import csv_records, parquet_records, storage
from stepburst.jsonl import reject_bound_error
from stepburst.manifest import CsvRange, ParquetRowGroup
from stepburst.manifest_stream import CsvSpan, RowGroup, SourceRef
from stepburst.records import load_transform, process_records


def _source(model: Any) -> SourceRef:
    return SourceRef(model.bucket, model.key, model.version_id, model.etag)


def csv_lines(item: CsvRange) -> Iterator[bytes]:
    source = _source(item.source)
    span = CsvSpan(source, item.start, item.end, item.header_end, item.delimiter)
    obj = storage.S3Object(source.bucket, source.key, source.version_id)

    def read(start: int, end: int) -> Iterable[bytes]:
        return storage.iter_range(obj, start, end, if_match=source.etag)

    _, lines = csv_records.read_span(span, read)
    return lines


def parquet_lines(item: ParquetRowGroup) -> Iterator[bytes]:
    source = _source(item.source)
    size = storage.head_object(storage.S3Object(source.bucket, source.key, source.version_id))
    group = RowGroup(source, item.row_group, item.rows, item.bytes)
    return parquet_records.rows_as_json_lines(group, size.size)


def process_table_item(
    lines: Iterable[bytes],
    transform_reference: str,
    output: storage.S3Object,
    rejects: storage.S3Object,
    *,
    max_reject_percent: float,
) -> dict[str, Any]:
    """Transform ``lines`` into ``output``; what the ledger keeps of the item."""
    transform = load_transform(transform_reference)
    with storage.MultipartWriter(output.bucket, output.key) as writer:
        rejected: storage.MultipartWriter | None = None

        def write_reject(data: bytes) -> None:
            nonlocal rejected
            if rejected is None:
                rejected = storage.MultipartWriter(rejects.bucket, rejects.key)
            rejected.write(data)

        try:
            stats = process_records(lines, transform, writer.write, write_reject)
        except BaseException:
            if rejected is not None:
                rejected.abort()
            raise
        if rejected is not None:
            rejected.close()
        too_many = reject_bound_error(stats, max_reject_percent, rejects)
        if too_many is not None:
            writer.abort()
    if too_many is not None:
        storage.delete_object(output)
        raise too_many
    if not stats.rejects:
        storage.delete_object(rejects)
    return {
        "lines": stats.lines,
        "records": stats.records,
        "rejects": stats.rejects,
        "filtered": stats.filtered,
        "bytes_in": stats.bytes_in,
        "bytes_out": stats.bytes_out,
        "output_key": output.key,
        "rejects_key": rejects.key if stats.rejects else None,
    }
