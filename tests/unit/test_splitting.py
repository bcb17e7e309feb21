"""Newline-aligned splitting: every line lands in exactly one range, whatever the sizes."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepburst.splitting import ByteRange, newline_aligned_ranges

pytestmark = pytest.mark.unit


class Reader:
    """``read(start, end)`` over bytes, recording what was asked for."""

    def __init__(self, data: bytes, *, short_at_end: bool = False) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []
        self.short_at_end = short_at_end

    def __call__(self, start: int, end: int) -> bytes:
        assert 0 <= start < end <= len(self.data), (start, end, len(self.data))
        self.calls.append((start, end))
        return self.data[start:end]

    @property
    def bytes_read(self) -> int:
        return sum(end - start for start, end in self.calls)


def line_spans(data: bytes) -> list[tuple[int, int]]:
    """``[start, end)`` of every line, its newline included."""
    spans = []
    start = 0
    while start < len(data):
        newline = data.find(b"\n", start)
        end = len(data) if newline < 0 else newline + 1
        spans.append((start, end))
        start = end
    return spans


def check_ranges(data: bytes, target: int, ranges: list[ByteRange]) -> None:
    if not data:
        assert ranges == []
        return
    assert ranges[0].start == 0
    assert ranges[-1].end == len(data)
    for before, after in itertools.pairwise(ranges):
        assert before.end == after.start
    assert all(r.end > r.start for r in ranges)
    assert b"".join(data[r.start : r.end] for r in ranges) == data
    for r in ranges[:-1]:
        assert data[r.end - 1 : r.end] == b"\n"
    # Every line lies inside exactly one range.
    for start, end in line_spans(data):
        holders = [r for r in ranges if r.start <= start and end <= r.end]
        assert len(holders) == 1, (start, end, ranges)
    # Each boundary is the first line start at or after a multiple of the target.
    for r in ranges[:-1]:
        nominal = (r.start // target + 1) * target
        assert r.end >= nominal
        assert b"\n" not in data[nominal - 1 : r.end - 1]


# Text with multi-byte characters (2, 3 and 4 bytes in UTF-8), spaces and CRs.
line_text = st.text(
    alphabet=st.sampled_from(["a", "b", "{", "}", '"', " ", "\r", "é", "€", "東", "🎉"]),
    max_size=40,
)


@st.composite
def jsonl_like(draw: Callable[..., object]) -> bytes:
    lines = draw(st.lists(line_text, max_size=30))
    assert isinstance(lines, list)
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(lines)
    if lines and draw(st.booleans()):
        text += ending
    return text.encode()


@given(
    data=jsonl_like(),
    target=st.integers(min_value=1, max_value=200),
    probe=st.integers(min_value=1, max_value=70),
)
@settings(max_examples=300, deadline=None)
def test_ranges_partition_the_lines(data: bytes, target: int, probe: int) -> None:
    ranges = newline_aligned_ranges(len(data), target, Reader(data), probe_size=probe)
    check_ranges(data, target, ranges)


def test_empty_object_has_no_ranges() -> None:
    reader = Reader(b"")
    assert newline_aligned_ranges(0, 10, reader) == []
    assert reader.calls == []


def test_boundary_already_at_a_line_start_stays() -> None:
    data = b"aaaa\nbbbb\ncccc\n"
    ranges = newline_aligned_ranges(len(data), 5, Reader(data))
    assert ranges == [ByteRange(0, 5), ByteRange(5, 10), ByteRange(10, 15)]


def test_one_byte_target_gives_one_range_per_line() -> None:
    data = "é\r\n\n€x\n🎉".encode()
    ranges = newline_aligned_ranges(len(data), 1, Reader(data), probe_size=1)
    assert [data[r.start : r.end] for r in ranges] == [
        "é\r\n".encode(),
        b"\n",
        "€x\n".encode(),
        "🎉".encode(),
    ]


def test_a_line_longer_than_the_target_makes_one_long_range() -> None:
    data = b"short\n" + b"x" * 1000 + b"\nafter\nend"
    ranges = newline_aligned_ranges(len(data), 100, Reader(data), probe_size=3)
    assert [data[r.start : r.end] for r in ranges] == [
        b"short\n" + b"x" * 1000 + b"\n",
        b"after\nend",
    ]


def test_no_newline_at_all_is_one_range() -> None:
    data = b"x" * 5000
    reader = Reader(data)
    assert newline_aligned_ranges(len(data), 64, reader, probe_size=16) == [ByteRange(0, 5000)]
    # The probe widens, so a long line costs few reads.
    assert len(reader.calls) < 15


def test_reads_only_small_windows_of_a_large_object() -> None:
    line = b'{"business_id": "abc", "stars": 4.5}\n'
    data = line * 30_000  # about 1.1 MB
    reader = Reader(data)
    ranges = newline_aligned_ranges(len(data), 100_000, reader, probe_size=4096)
    check_ranges(data, 100_000, ranges)
    assert len(ranges) == 12
    assert reader.bytes_read <= 11 * 4096


def test_short_reads_at_the_end_are_accepted() -> None:
    data = b"a\nbb"

    def read(start: int, end: int) -> bytes:
        return data[start : min(end, len(data))]

    # The caller believes the object is longer than it is: the last range still ends at size.
    assert newline_aligned_ranges(10, 3, read) == [ByteRange(0, 10)]
    assert newline_aligned_ranges(4, 1, read) == [ByteRange(0, 2), ByteRange(2, 4)]


@pytest.mark.parametrize(
    ("size", "target", "probe"),
    [(-1, 1, 1), (10, 0, 1), (10, 5, 0)],
)
def test_invalid_arguments_are_refused(size: int, target: int, probe: int) -> None:
    with pytest.raises(ValueError, match=">="):
        newline_aligned_ranges(size, target, Reader(b"x" * 10), probe_size=probe)
