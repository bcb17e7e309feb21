"""What an item function may return, and what its ledger record keeps."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest

from stepburst.steps import MAX_RESULT_BYTES, ItemResultError, item_result

pytestmark = pytest.mark.unit

FUNCTION = "helpers:run_one"


@pytest.mark.parametrize(
    ("returned", "kept"),
    [
        (None, None),
        ({}, None),
        ({"members": 3, "bytes": 1.5}, {"members": 3, "bytes": 1.5}),
        (OrderedDict(a=1), {"a": 1}),
        (
            {"parts": (1, 2), "nested": {"x": [None, True]}},
            {"parts": [1, 2], "nested": {"x": [None, True]}},
        ),
        ({1: "one"}, {"1": "one"}),
    ],
)
def test_mappings_are_kept_as_json(returned: Any, kept: Any) -> None:
    assert item_result(FUNCTION, returned) == kept


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        ([1, 2], "the function returned a list; return a mapping or None"),
        ("done", "the function returned a str; return a mapping or None"),
        (3, "the function returned an int; return a mapping or None"),
        ((("a", 1),), "the function returned a tuple; return a mapping or None"),
        ({"seen": {1, 2}}, "the function's result cannot be kept as JSON"),
        ({"blob": "x" * MAX_RESULT_BYTES}, f"over {MAX_RESULT_BYTES}"),
    ],
)
def test_anything_else_fails_the_item_saying_what_to_return(returned: Any, problem: str) -> None:
    with pytest.raises(ItemResultError) as raised:
        item_result(FUNCTION, returned)
    assert str(raised.value).startswith(f"{FUNCTION}: ")
    assert problem in str(raised.value)
