"""Adapt a deployed ASL definition to what moto's interpreter can parse, in memory only.

The files under ``statemachines/`` are never changed. moto 5.2.5's grammar rejects a few valid
ASL constructs; the engine rewrites its in-memory copy and re-creates their behaviour in the
hooks (:mod:`stepburst_local.patches`):

* ``ItemBatcher`` (not in the grammar) is removed and kept aside; the Distributed Map hook
  groups items into ``{"Items": [...], "BatchInput": ...}`` like AWS.
* ``ProcessorConfig.ExecutionType: EXPRESS`` becomes ``STANDARD`` (children run the same
  states; Express-only semantics are not emulated, except that they send no status-change
  events).
* An integer ``ToleratedFailurePercentage`` literal becomes a float (the grammar only takes
  decimals).
* ``ItemReader.ReaderConfig.InputType: JSONL`` becomes ``JSON`` (the parser knows CSV and
  JSON only); the Distributed Map hook reads those items one per line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ItemBatcher:
    """A Distributed Map's ``ItemBatcher``, resolved against the state input at run time."""

    max_items: int | None = None
    max_items_path: str | None = None
    max_bytes: int | None = None
    max_bytes_path: str | None = None
    batch_input: dict[str, Any] | None = None


@dataclass
class Adaptation:
    """The in-memory definition the interpreter runs, and what was taken out of it."""

    definition: str
    batchers: dict[str, ItemBatcher] = field(default_factory=dict)
    json_lines: set[str] = field(default_factory=set)
    """The Map states whose ItemReader reads JSON Lines."""
    express_children: set[str] = field(default_factory=set)
    """The Distributed Map states whose children are EXPRESS in the deployed definition."""
    changes: list[str] = field(default_factory=list)


def adapt_definition(definition: str) -> Adaptation:
    document = json.loads(definition)
    adaptation = Adaptation(definition="")
    _adapt_states(document, adaptation, path="")
    adaptation.definition = json.dumps(document) if adaptation.changes else definition
    return adaptation


def _adapt_states(container: Any, adaptation: Adaptation, path: str) -> None:
    states = container.get("States") if isinstance(container, dict) else None
    if not isinstance(states, dict):
        return  # not a definition: the parser reports it
    for name, state in states.items():
        where = f"{path}{name}"
        if not isinstance(state, dict):
            continue
        if state.get("Type") == "Map":
            _adapt_map(name, state, adaptation, where)
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            _adapt_states(processor, adaptation, f"{where}/")
        elif state.get("Type") == "Parallel":
            for index, branch in enumerate(state.get("Branches", [])):
                _adapt_states(branch, adaptation, f"{where}[{index}]/")


def _adapt_map(name: str, state: dict[str, Any], adaptation: Adaptation, where: str) -> None:
    batcher = state.pop("ItemBatcher", None)
    if isinstance(batcher, dict):
        adaptation.batchers[name] = ItemBatcher(
            max_items=batcher.get("MaxItemsPerBatch"),
            max_items_path=batcher.get("MaxItemsPerBatchPath"),
            max_bytes=batcher.get("MaxInputBytesPerBatch"),
            max_bytes_path=batcher.get("MaxInputBytesPerBatchPath"),
            batch_input=batcher.get("BatchInput"),
        )
        adaptation.changes.append(f"{where}: ItemBatcher emulated by the engine")
    config = state.get("ItemProcessor", {}).get("ProcessorConfig", {})
    if config.get("ExecutionType") == "EXPRESS":
        config["ExecutionType"] = "STANDARD"
        adaptation.express_children.add(name)
        adaptation.changes.append(f"{where}: EXPRESS children run as STANDARD")
    reader_config = (state.get("ItemReader") or {}).get("ReaderConfig") or {}
    if reader_config.get("InputType") == "JSONL":
        reader_config["InputType"] = "JSON"
        adaptation.json_lines.add(name)
        adaptation.changes.append(f"{where}: JSONL items read one per line by the engine")
    tolerated = state.get("ToleratedFailurePercentage")
    if isinstance(tolerated, int) and not isinstance(tolerated, bool):
        state["ToleratedFailurePercentage"] = float(tolerated)
        adaptation.changes.append(f"{where}: ToleratedFailurePercentage as a decimal")
