r"""Work-item names from range expressions, lists and list files.

An expression is a comma-separated list of elements; whitespace around an element is dropped.

- A **range** is two digit runs joined by ``-``: ``Dam001/Period01-16`` stands for
  ``Dam001/Period01`` … ``Dam001/Period16``. An element may hold several ranges and stands
  for every combination, the first range varying slowest: ``Dam001-003/Period01-02`` is six
  names, ``Dam001/Period01``, ``Dam001/Period02``, ``Dam002/Period01``, …
- **Zero padding**: a range's numbers are as wide as its start (``01-16`` gives ``01`` …
  ``16``, ``8-10`` gives ``8``, ``9``, ``10``, ``098-101`` gives ``098`` … ``101``). An end
  written with a leading zero must be as wide as the start (``01-003`` is refused).
  ``padding`` pads every range, and every element that is only a number, to that width
  instead. Digits that are not part of a range (the ``001`` of ``Dam001/Period01-16``) are
  left as written.
- **Elements keep their prefix**: an element that is only a number or a range takes the place
  of the last number or range of the element before it, keeping the text around it:
  ``Dam001/Period1-3,7`` ends with ``Dam001/Period7``, ``Run9-10.csv,12`` with ``Run12.csv``.
  Any other element is a whole name of its own (``Dam001/Period1,Dam002/Period1``).
- **Hyphens**: a ``-`` right after a digit starts a range and must be followed by digits, so
  ``Period01-`` and ``v2-final`` are refused; anywhere else a ``-`` is part of the name
  (``ok-1``, ``flaky-redrive``). ``\-`` is a literal hyphen anywhere (``v2\-final``,
  ``2024\-01\-05``), ``\,`` a literal comma and ``\\`` a backslash; no other escape exists.
- ``prefix`` is put, as given, before every name; it is never parsed.

Names come out in order, each once. Every element is checked before any name is made, and
``count`` (the number of names before repeats are dropped) is known without making any, so a
caller can refuse a huge expression first; iterating makes the names one at a time.

Names in a list or a list file are taken literally: nothing in them is expanded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from stepburst.errors import InvalidInputError

_TOKEN = re.compile(
    r"\\(?P<escaped>.?)"
    r"|(?P<start>[0-9]+)-(?P<end>[0-9]+)"
    r"|(?P<digits>[0-9]+)"
    r"|(?P<hyphen>-)"
    r"|(?P<text>[^\\0-9-]+)",
    re.DOTALL,
)
_ESCAPABLE = ("-", ",", "\\")
_ONLY_A_NUMBER = re.compile(r"[0-9]+(?:-[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Text:
    """Literal text: digits outside a range are text too, but remembered as a number."""

    text: str
    number: bool = False


@dataclass(frozen=True, slots=True)
class Range:
    start: int
    end: int
    width: int

    def __len__(self) -> int:
        return self.end - self.start + 1


Token = Text | Range


@dataclass(frozen=True, slots=True)
class Element:
    tokens: tuple[Token, ...]

    @property
    def count(self) -> int:
        total = 1
        for token in self.tokens:
            if isinstance(token, Range):
                total *= len(token)
        return total

    def names(self, padding: int | None) -> Iterator[str]:
        return _render(self.tokens, padding)

    def continued_by(self, number: Range) -> Element | None:
        """This element with its last number or range replaced, or None if it has none."""
        for position in range(len(self.tokens) - 1, -1, -1):
            token = self.tokens[position]
            if isinstance(token, Range) or token.number:
                return Element((*self.tokens[:position], number, *self.tokens[position + 1 :]))
        return None


@dataclass(frozen=True, slots=True)
class WorkItems:
    """A checked expression: ``count`` before any name exists, names one at a time."""

    elements: tuple[Element, ...]
    prefix: str
    padding: int | None

    @property
    def count(self) -> int:
        """How many names the elements make, counting a repeated name each time."""
        return sum(element.count for element in self.elements)

    def __iter__(self) -> Iterator[str]:
        if len(self.elements) == 1:
            # One element never repeats a name (its ranges sit between non-digits), so it
            # streams without remembering what it made.
            for name in self.elements[0].names(self.padding):
                yield self.prefix + name
            return
        seen: set[str] = set()
        for element in self.elements:
            for name in element.names(self.padding):
                if name not in seen:
                    seen.add(name)
                    yield self.prefix + name


def parse(
    expression: str,
    *,
    prefix: str = "",
    padding: int | None = None,
    field: str = "input.items",
) -> WorkItems:
    """Check an expression element by element; the error names the element that is wrong."""
    raw = _split_elements(expression)
    if not expression.strip() or not all(raw):
        raise InvalidInputError(field, f"{expression!r} is not a work-item expression")
    elements: list[Element] = []
    padded = False
    for text in raw:
        tokens = _tokens(text, field)
        if _ONLY_A_NUMBER.fullmatch(text):
            number = tokens[0] if isinstance(tokens[0], Range) else _single(text)
            padded = True
            continued = elements[-1].continued_by(number) if elements else None
            elements.append(continued or Element((number,)))
        else:
            padded = padded or any(isinstance(token, Range) for token in tokens)
            elements.append(Element(tokens))
    if padding is not None and not padded:
        raise InvalidInputError(
            "input.padding", f"{expression!r} has no range or number for padding to apply to"
        )
    return WorkItems(tuple(elements), prefix, padding)


def expand(
    expression: str,
    *,
    prefix: str = "",
    padding: int | None = None,
    field: str = "input.items",
) -> Iterator[str]:
    """Every name an expression stands for, in order, each once, made as they are read."""
    return iter(parse(expression, prefix=prefix, padding=padding, field=field))


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


def _split_elements(expression: str) -> list[str]:
    """Split on the commas that are not escaped, keeping escapes for the tokenizer."""
    elements: list[str] = []
    current: list[str] = []
    characters = iter(expression)
    for character in characters:
        if character == "\\":
            current.append(character + next(characters, ""))
        elif character == ",":
            elements.append("".join(current).strip())
            current = []
        else:
            current.append(character)
    elements.append("".join(current).strip())
    return elements


def _tokens(element: str, field: str) -> tuple[Token, ...]:
    def refuse(problem: str) -> InvalidInputError:
        return InvalidInputError(field, f"{element!r}: {problem}")

    tokens: list[Token] = []
    for match in _TOKEN.finditer(element):
        kind = match.lastgroup
        if kind == "escaped":
            if match["escaped"] not in _ESCAPABLE:
                raise refuse("a backslash escapes only '-', ',' or '\\'")
            tokens.append(Text(match["escaped"]))
        elif kind == "end":
            start, end = match["start"], match["end"]
            if int(end) < int(start):
                raise refuse(f"the range {start}-{end} ends before it starts")
            if end.startswith("0") and len(end) != len(start):
                raise refuse(f"the range {start}-{end}: a zero-padded end is as wide as its start")
            tokens.append(Range(int(start), int(end), len(start)))
        elif kind == "digits":
            tokens.append(Text(match["digits"], number=True))
        elif kind == "hyphen":
            if tokens and (isinstance(tokens[-1], Range) or tokens[-1].number):
                raise refuse(
                    "a '-' after a number starts a range and needs a number after it "
                    "(write \\- for a hyphen in a name)"
                )
            tokens.append(Text("-"))
        else:
            tokens.append(Text(match["text"]))
    return tuple(tokens)


def _single(text: str) -> Range:
    return Range(int(text), int(text), len(text))


def _render(tokens: Sequence[Token], padding: int | None) -> Iterator[str]:
    if not tokens:
        yield ""
        return
    first, rest = tokens[0], tokens[1:]
    if isinstance(first, Text):
        for tail in _render(rest, padding):
            yield first.text + tail
        return
    width = padding if padding is not None else first.width
    for number in range(first.start, first.end + 1):
        head = f"{number:0{width}d}"
        for tail in _render(rest, padding):
            yield head + tail
