r"""CSV items: ranges of whole records planned at record boundaries, read with their header.

**Finding record boundaries.** A newline ends a record only outside a quoted field, and
whether a byte is inside quotes depends on every quote before it, so a boundary cannot be
found by looking near it alone (Lithops, for one, aligns chunks to the next newline, which
cuts a record whose quoted field holds a newline; Step Functions' CSV ItemReader reads the
object with one sequential parser). The planner therefore reads the object once from its
first byte, counting quote characters: in RFC 4180 CSV a quote opens or closes a quoted field
and an escaped quote (``""``) is two, so a ``\n`` ends a record exactly when the number of
quotes before it is even. Each nominal boundary (multiples of ``range_mb``) moves to the first
``\n`` at or after it with an even count; the header is the bytes up to the first such
``\n``. A quote counted this way agrees with Python's :mod:`csv` reader, which reads each
range, on RFC 4180 input; a quote in the middle of an unquoted field (``ab"c``) is not RFC
4180 and may move a boundary. CRLF endings keep their ``\r`` with the record they end; a
bare ``\r`` does not end a record.

**Reading.** An item reads the header (``[0, header_end)``) and its range, parses the range
with :mod:`csv` and gives each record to the job's record function as a dict of strings keyed
by the header, through the same path as a JSON line (:func:`stepburst.records.process_records`):
output and rejects are JSON lines, like the jsonl split's. A record with more fields than the
header is rejected (``not_an_object``, its fields shown as a JSON array); missing trailing
fields are empty strings. Rejects' ``item_line`` counts records within the range.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterable, Iterator

import orjson

from stepburst import storage
from stepburst.jobs.model import CsvSplit
from stepburst.manifest_stream import CsvSpan, SourceRef

QUOTE = b'"'
# The planner's reads while it counts quotes.
SCAN_CHUNK = 8 * 1024 * 1024


def record_boundaries(
    chunks: Iterable[bytes], size: int, target: int
) -> tuple[int, list[tuple[int, int]]]:
    """``(header_end, ranges)`` for an object of ``size`` bytes read as ``chunks`` in order.

    Ranges are ``(start, end)`` pairs covering ``[header_end, size)``, each about ``target``
    bytes and starting at a record's first byte; none is empty.
    """
    if target < 1:
        raise ValueError(f"target must be >= 1, got {target}")
    header_end: int | None = None
    ranges: list[tuple[int, int]] = []
    start = 0
    wanted = 0  # the next boundary is the first record end at or after this offset
    offset = 0
    quotes = 0  # quote characters before ``offset``
    for chunk in chunks:
        position = 0
        while True:
            newline = chunk.find(b"\n", position)
            if newline < 0:
                quotes += chunk.count(QUOTE, position)
                break
            quotes += chunk.count(QUOTE, position, newline)
            position = newline + 1
            end = offset + position
            if quotes % 2 or end < wanted:
                continue
            if header_end is None:
                header_end = start = end
            elif end < size:
                ranges.append((start, end))
                start = end
            wanted = (start // target + 1) * target if header_end is not None else 0
        offset += len(chunk)
    if header_end is None:
        return size, []
    if start < size:
        ranges.append((start, size))
    return header_end, ranges


def plan_ranges(
    source: SourceRef,
    size: int,
    split: CsvSplit,
    *,
    bytes_per_second: float,
    overhead_seconds: float,
) -> Iterator[tuple[float, CsvSpan]]:
    """The items of a CSV object: one per range of whole records."""
    obj = storage.S3Object(source.bucket, source.key, source.version_id)
    chunks = storage.iter_range(obj, 0, size, if_match=source.etag) if size else iter(())
    target = max(1, int(split.range_mb * 1_000_000))
    header_end, ranges = record_boundaries(chunks, size, target)
    for start, end in ranges:
        seconds = round(overhead_seconds + (end - start) / bytes_per_second, 3)
        yield seconds, CsvSpan(source, start, end, header_end, split.delimiter)


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Text lines (each with its ending) from UTF-8 chunks cut anywhere."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending = ""
    for chunk in chunks:
        text = pending + decoder.decode(chunk)
        lines = text.split("\n")
        pending = lines.pop()
        for line in lines:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def header_fields(header: bytes, delimiter: str) -> list[str]:
    text = header.decode("utf-8-sig")
    rows = list(csv.reader(text.splitlines(keepends=True), delimiter=delimiter))
    return rows[0] if rows else []


def records_as_json_lines(
    header: list[str], chunks: Iterable[bytes], delimiter: str
) -> Iterator[bytes]:
    """Each CSV record of ``chunks`` as one JSON line: an object keyed by ``header``."""
    width = len(header)
    for row in csv.reader(_lines(chunks), delimiter=delimiter):
        if not row:
            yield b"\n"  # a blank line: counted and skipped like a JSON one
            continue
        if len(row) > width:
            yield orjson.dumps(row) + b"\n"
            continue
        padded = row + [""] * (width - len(row))
        yield orjson.dumps(dict(zip(header, padded, strict=True))) + b"\n"


def read_span(
    span: CsvSpan, read_range: Callable[[int, int], Iterable[bytes]]
) -> tuple[list[str], Iterator[bytes]]:
    """The header's fields and the span's records as JSON lines, read with ``read_range``."""
    header = b"".join(read_range(0, span.header_end))
    fields = header_fields(header, span.delimiter)
    return fields, records_as_json_lines(fields, read_range(span.start, span.end), span.delimiter)
