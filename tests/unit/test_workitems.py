"""Work-item range expressions and list files."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest

from stepburst.errors import InvalidInputError
from stepburst.workitems import expand, from_lines, parse

pytestmark = pytest.mark.unit


def test_range_with_prefix_and_padding_from_the_start() -> None:
    names = list(expand("Dam001/Period01-16"))
    assert names[0] == "Dam001/Period01"
    assert names[-1] == "Dam001/Period16"
    assert len(names) == 16


def test_parts_prefix_and_explicit_padding() -> None:
    assert list(expand("01-03", prefix="Dam001/Period")) == [
        "Dam001/Period01",
        "Dam001/Period02",
        "Dam001/Period03",
    ]
    assert list(expand("8-10", padding=3)) == ["008", "009", "010"]


def test_lists_suffixes_and_duplicates() -> None:
    assert list(expand("a, Run9-10.csv ,a")) == ["a", "Run9.csv", "Run10.csv"]


@pytest.mark.parametrize("expression", ["", "a,,b", " , "])
def test_empty_expressions_are_refused(expression: str) -> None:
    with pytest.raises(InvalidInputError, match=r"input\.items"):
        parse(expression)


def test_backwards_range_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"'Period16-01': .*ends before it starts"):
        parse("Period16-01")


@pytest.mark.parametrize(
    ("expression", "prefix", "element"),
    [
        ("Dam001/Period01-", "", "Dam001/Period01-"),
        ("01-", "Dam001/Period", "01-"),
        ("a,Period01-x", "", "Period01-x"),
        ("1-2-3", "", "1-2-3"),
        ("v2-final", "", "v2-final"),
        ("ok,Run1\\q", "", "Run1\\q"),
        ("Run1\\", "", "Run1\\"),
        ("Period01-003", "", "Period01-003"),
    ],
)
def test_malformed_elements_are_refused_by_name(expression: str, prefix: str, element: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        parse(expression, prefix=prefix)
    assert raised.value.field == "input.items"
    assert raised.value.problem.startswith(f"{element!r}: ")


def test_list_elements_keep_their_prefix() -> None:
    assert list(expand("Dam001/Period1-3,7")) == [
        "Dam001/Period1",
        "Dam001/Period2",
        "Dam001/Period3",
        "Dam001/Period7",
    ]
    assert list(expand("Dam001/Period01-02,05-06, 09")) == [
        "Dam001/Period01",
        "Dam001/Period02",
        "Dam001/Period05",
        "Dam001/Period06",
        "Dam001/Period09",
    ]
    assert list(expand("Run9-10.csv,12")) == ["Run9.csv", "Run10.csv", "Run12.csv"]
    # An element with more than a number is a whole name of its own.
    assert list(expand("Dam001/Period1,Dam002/Period1,3c273")) == [
        "Dam001/Period1",
        "Dam002/Period1",
        "3c273",
    ]


def test_two_level_ranges_expand_to_every_combination() -> None:
    expression = parse("Dam001-003/Period01-02")
    assert expression.count == 6
    assert list(expression) == [
        "Dam001/Period01",
        "Dam001/Period02",
        "Dam002/Period01",
        "Dam002/Period02",
        "Dam003/Period01",
        "Dam003/Period02",
    ]
    assert list(expand("Dam001-002/Period01,03")) == [
        "Dam001/Period01",
        "Dam002/Period01",
        "Dam001/Period03",
        "Dam002/Period03",
    ]


def test_hyphens_in_names() -> None:
    # A hyphen that does not follow a digit is part of the name; after a digit, escape it.
    assert list(expand("ok-1,flaky-redrive,item-1-3")) == [
        "ok-1",
        "flaky-redrive",
        "item-1",
        "item-2",
        "item-3",
    ]
    assert list(expand("v2\\-final,2024\\-01\\-05,a\\,b,back\\\\slash")) == [
        "v2-final",
        "2024-01-05",
        "a,b",
        "back\\slash",
    ]


def test_zero_padding() -> None:
    assert list(expand("Period01-16"))[8:10] == ["Period09", "Period10"]
    assert list(expand("8-10")) == ["8", "9", "10"]
    assert list(expand("098-101")) == ["098", "099", "100", "101"]
    assert list(expand("001-003", padding=2)) == ["01", "02", "03"]
    assert list(expand("Period1-2,7", padding=2)) == ["Period01", "Period02", "Period07"]
    # Digits that are part of a name are never padded.
    assert list(expand("Dam1/Period1-2", padding=3)) == ["Dam1/Period001", "Dam1/Period002"]
    with pytest.raises(InvalidInputError) as raised:
        parse("Dam001,Dam002x", padding=3)
    assert raised.value.field == "input.padding"


def test_count_comes_before_any_name() -> None:
    tracemalloc.start()
    try:
        expression = parse("x1-1000000000000,Dam001-999/Period01-99")
        assert expression.count == 1_000_000_000_000 + 999 * 99
        first = list(itertools.islice(expression, 3))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first == ["x1", "x2", "x3"]
    assert peak < 1_000_000


def test_list_files_skip_blanks_and_comments() -> None:
    assert from_lines(["# dams", "Dam001", "", "Dam002  # second", "Dam001"]) == [
        "Dam001",
        "Dam002",
    ]
    with pytest.raises(InvalidInputError, match="names no work items"):
        from_lines(["# nothing"])


def test_two_level_ranges_with_padding_and_widths() -> None:
    # Each range is as wide as its own start; padding pads both levels alike.
    assert list(expand("Dam8-10/Period1-2")) == [
        "Dam8/Period1",
        "Dam8/Period2",
        "Dam9/Period1",
        "Dam9/Period2",
        "Dam10/Period1",
        "Dam10/Period2",
    ]
    assert list(expand("Dam1-2/Period9-10", padding=3)) == [
        "Dam001/Period009",
        "Dam001/Period010",
        "Dam002/Period009",
        "Dam002/Period010",
    ]
    assert list(expand("1-2/Period01-02", prefix="Dam00")) == [
        "Dam001/Period01",
        "Dam001/Period02",
        "Dam002/Period01",
        "Dam002/Period02",
    ]
    assert parse("Dam001-100/Period01-16").count == 1600


@pytest.mark.parametrize(
    ("expression", "element", "words"),
    [
        ("Dam001-03/Period01-02", "Dam001-03/Period01-02", "as wide as its start"),
        ("Dam001-003/Period1-02", "Dam001-003/Period1-02", "as wide as its start"),
        ("Dam003-001/Period01-02", "Dam003-001/Period01-02", "ends before it starts"),
        ("Dam001-003/Period01-", "Dam001-003/Period01-", "needs a number after it"),
        ("a,Dam001-003/Period02-01", "Dam001-003/Period02-01", "ends before it starts"),
    ],
)
def test_two_level_ranges_that_cannot_mean_one_list_are_refused(
    expression: str, element: str, words: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        parse(expression)
    assert raised.value.field == "input.items"
    assert raised.value.problem.startswith(f"{element!r}: ")
    assert words in raised.value.problem
