"""Reading the deployed state machine definitions, for tests that hold Python to them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFINITIONS = sorted((REPO / "statemachines").glob("*.asl.json"))

_FORMAT = re.compile(r"^States\.Format\('(?P<template>[^']*)'(?P<arguments>(?:, *\$[.\w]+)*)\)$")


def definition(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def states(machine: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state by name, those of Map item processors and Parallel branches included."""
    for name, state in machine["States"].items():
        yield name, state
        for inner in (state.get("ItemProcessor"), state.get("Iterator")):
            if inner is not None:
                yield from states(inner)
        for branch in state.get("Branches", []):
            yield from states(branch)


def all_states() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in DEFINITIONS:
        yield from states(definition(path))


def state(name: str) -> dict[str, Any]:
    found = [found for state_name, found in all_states() if state_name == name]
    assert len(found) == 1, f"{len(found)} states named {name}"
    return found[0]


def resolve(path: str, document: Any) -> Any:
    """A plain reference path (``$.a.b``) in a state's input."""
    assert path.startswith("$."), path
    for part in path[2:].split("."):
        document = document[part]
    return document


def render_format(expression: str, state_input: Mapping[str, Any]) -> str:
    """What ``States.Format('...{}...', $.a, $.b)`` gives for this state input."""
    match = _FORMAT.match(expression)
    assert match is not None, f"not a States.Format of plain paths: {expression}"
    paths = [part.strip() for part in match["arguments"].split(",") if part.strip()]
    pieces = match["template"].split("{}")
    assert len(pieces) == len(paths) + 1, expression
    rendered = pieces[0]
    for path, piece in zip(paths, pieces[1:], strict=True):
        rendered += str(resolve(path, state_input)) + piece
    return rendered
