"""Work-item range expressions and list files."""

from __future__ import annotations

import pytest

from stepburst.errors import InvalidInputError, StepburstError
from stepburst.units import render_command
from stepburst.workitems import expand, from_lines

pytestmark = pytest.mark.unit


def test_range_with_prefix_and_padding_from_the_start() -> None:
    names = expand("Dam001/Period01-16")
    assert names[0] == "Dam001/Period01"
    assert names[-1] == "Dam001/Period16"
    assert len(names) == 16


def test_parts_prefix_and_explicit_padding() -> None:
    assert expand("01-03", prefix="Dam001/Period") == [
        "Dam001/Period01",
        "Dam001/Period02",
        "Dam001/Period03",
    ]
    assert expand("8-10", padding=3) == ["008", "009", "010"]


def test_lists_suffixes_and_duplicates() -> None:
    assert expand("a, Run9-10.csv ,a") == ["a", "Run9.csv", "Run10.csv"]


@pytest.mark.parametrize("expression", ["", "a,,b", " , "])
def test_empty_expressions_are_refused(expression: str) -> None:
    with pytest.raises(InvalidInputError, match=r"input\.items"):
        expand(expression)


def test_backwards_range_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="ends before it starts"):
        expand("Period16-01")


def test_list_files_skip_blanks_and_comments() -> None:
    assert from_lines(["# dams", "Dam001", "", "Dam002  # second", "Dam001"]) == [
        "Dam001",
        "Dam002",
    ]
    with pytest.raises(InvalidInputError, match="names no work items"):
        from_lines(["# nothing"])


def test_commands_substitute_variables_per_argument() -> None:
    values = {"ITEM": "Dam001/Period01", "MODE_STR": "full mode"}
    assert render_command("run.sh --item {ITEM} --mode '{MODE_STR}'", values) == [
        "run.sh",
        "--item",
        "Dam001/Period01",
        "--mode",
        "full mode",
    ]
    with pytest.raises(StepburstError, match=r"\{MISSING\}"):
        render_command("run.sh {MISSING}", values)
