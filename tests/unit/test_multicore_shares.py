"""How an item's range is shared between the parent process and the children it starts."""

from __future__ import annotations

import itertools

import pytest

from stepburst.multicore import share_ranges

pytestmark = pytest.mark.unit

LINE = b'{"n":123456789}\n'  # 16 bytes


def shares(size_lines: int, count: int, head_start: int) -> list[tuple[int, int]]:
    data = LINE * size_lines

    def read(low: int, high: int) -> bytes:
        return data[low:high]

    return [(piece.start, piece.end) for piece in share_ranges(len(data), count, head_start, read)]


@pytest.mark.parametrize("count", [2, 3, 4])
def test_the_shares_cover_the_range_in_whole_lines(count: int) -> None:
    pieces = shares(10_000, count, 16_000)

    assert len(pieces) == count
    assert pieces[0][0] == 0
    assert pieces[-1][1] == 10_000 * len(LINE)
    assert all(end == start for (_, end), (start, _) in itertools.pairwise(pieces))
    assert all(start % len(LINE) == 0 for start, _ in pieces)


def test_the_parent_share_is_larger_by_the_head_start() -> None:
    (first, second, third) = shares(10_000, 3, 16_000)
    even = 10_000 * len(LINE) / 3

    assert first[1] - first[0] == pytest.approx(even + 2 * 16_000 / 3, abs=len(LINE))
    assert second[1] - second[0] == pytest.approx(third[1] - third[0], abs=len(LINE))


def test_without_head_start_the_shares_are_even() -> None:
    sizes = {end - start for start, end in shares(9_000, 3, 0)}

    assert sizes == {3_000 * len(LINE)}


def test_a_head_start_larger_than_the_range_leaves_each_child_a_share() -> None:
    size = 1_000 * len(LINE)
    first, second = shares(1_000, 2, 10 * size)

    assert first[1] - first[0] == pytest.approx(0.75 * size, abs=len(LINE))
    assert second[1] == size
