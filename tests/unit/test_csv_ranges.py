"""CSV ranges: record boundaries found by quote parity, the header read by every range."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepburst.csv_records import header_fields, record_boundaries, records_as_json_lines

pytestmark = pytest.mark.unit

FIELD = st.text(alphabet=st.sampled_from('ab,"\n é'), max_size=8)


def encode(rows: list[list[str]], terminator: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=terminator).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def parsed(header: bytes, body: bytes) -> list[dict[str, str]]:
    fields = header_fields(header, ",")
    import orjson

    return [orjson.loads(line) for line in records_as_json_lines(fields, [body], ",")]


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(FIELD, min_size=2, max_size=2), min_size=1, max_size=25),
    target=st.integers(min_value=1, max_value=40),
    chunk=st.integers(min_value=1, max_value=17),
    terminator=st.sampled_from(["\n", "\r\n"]),
)
def test_ranges_reassemble_to_exactly_the_file_records(
    rows: list[list[str]], target: int, chunk: int, terminator: str
) -> None:
    data = encode([["name", "note"], *rows], terminator)
    header_end, ranges = record_boundaries(chunked(data, chunk), len(data), target)
    header = data[:header_end]
    assert header_fields(header, ",") == ["name", "note"]
    # Contiguous from the header's end to the last byte, none empty.
    assert [start for start, _ in ranges] == [header_end] + [end for _, end in ranges[:-1]]
    assert ranges[-1][1] == len(data)
    assert all(end > start for start, end in ranges)
    # Each range, read with the header, gives its records; together, exactly the file's.
    got = [record for start, end in ranges for record in parsed(header, data[start:end])]
    expected = [dict(zip(["name", "note"], row, strict=True)) for row in rows]
    assert got == expected


def test_a_boundary_inside_a_quoted_field_moves_to_the_next_record() -> None:
    data = b'id,text\n1,"two\nlines"\n2,plain\n'
    # The nominal boundary (byte 12) falls inside the quoted field: the range ends at 22, not at the
    # newline inside the quotes (byte 15).
    header_end, ranges = record_boundaries([data], len(data), 12)
    assert header_end == 8
    assert ranges == [(8, 22), (22, len(data))]


def test_a_header_only_file_has_no_ranges() -> None:
    assert record_boundaries([b"a,b\n"], 4, 10) == (4, [])
    assert record_boundaries([b""], 0, 10) == (0, [])
