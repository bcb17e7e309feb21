"""Work-item names from range expressions, lists and list files.

``Dam001/Period01-16`` expands to ``Dam001/Period01`` … ``Dam001/Period16``: the last run of
digits before ``-`` is the start, the digits after it the end, and the start's width is the
zero padding. Several expressions may be joined with commas. ``expand("01-16",
prefix="Dam001/Period")`` and an explicit ``padding`` give the same names from parts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from stepburst.errors import InvalidInputError

_RANGE = re.compile(r"^(?P<head>.*?)(?P<start>\d+)-(?P<end>\d+)(?P<tail>[^\d-]*)$")


def _expand_one(expression: str, prefix: str, padding: int | None, field: str) -> Iterator[str]:
    match = _RANGE.match(expression)
    if match is None:
        yield prefix + expression
        return
    start_text, end_text = match["start"], match["end"]
    start, end = int(start_text), int(end_text)
    if end < start:
        raise InvalidInputError(field, f"{expression!r}: the range ends before it starts")
    width = padding if padding is not None else len(start_text)
    for number in range(start, end + 1):
        yield f"{prefix}{match['head']}{number:0{width}d}{match['tail']}"


def expand(
    expression: str,
    *,
    prefix: str = "",
    padding: int | None = None,
    field: str = "input.items",
) -> list[str]:
    """Every name an expression stands for, in order, without duplicates."""
    parts = [part.strip() for part in expression.split(",")]
    if not expression.strip() or not all(parts):
        raise InvalidInputError(field, f"{expression!r} is not a work-item expression")
    names: dict[str, None] = {}
    for part in parts:
        names.update(dict.fromkeys(_expand_one(part, prefix, padding, field)))
    return list(names)


def from_lines(lines: Iterable[str], *, field: str = "input.items_key") -> list[str]:
    """Names from a list file: one per line; blank lines and ``#`` comments are skipped."""
    names: dict[str, None] = {}
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            names[text] = None
    if not names:
        raise InvalidInputError(field, "the list names no work items")
    return list(names)
