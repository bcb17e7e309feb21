"""The JSON documents the CLI prints with ``--json``: one documented shape per command.

Each document carries ``schema_version``; its JSON Schema is ``cli_schemas/<command>.json``
(README, "JSON output"). Ledger records are shown without the table's own keys (``pk``,
``sk``, ``expires_at``): scripts see runs and items, never how the ledger stores them.

Light on imports: ``stepburst --help`` loads this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from importlib import resources
from typing import Any

SCHEMA_VERSION = 1
# Keys of the ledger's storage, not of the run or item they hold.
INTERNAL_KEYS = frozenset({"pk", "sk", "expires_at"})
SCHEMAS_PACKAGE = "stepburst.cli_schemas"


def _plain(value: Any) -> Any:
    """DynamoDB's numbers as ints or floats, so a document is plain JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value


def public(record: Mapping[str, Any]) -> dict[str, Any]:
    """A ledger record without the table's own keys."""
    return {str(k): _plain(v) for k, v in record.items() if k not in INTERNAL_KEYS}


def item_name(record: Mapping[str, Any]) -> str:
    """What a person calls an item: its name, its byte range, or its index."""
    if record.get("value"):
        return str(record["value"])
    jsonl = record.get("jsonl")
    if isinstance(jsonl, Mapping) and "start" in jsonl:
        return f"bytes {jsonl['start']}-{jsonl.get('end')}"
    if record.get("output_key"):
        # A byte range of a JSONL upload is known by the part it writes.
        return str(record["output_key"]).rsplit("/", 1)[-1].split(".", 1)[0]
    return f"#{record.get('item')}"


def item_document(record: Mapping[str, Any]) -> dict[str, Any]:
    document = public(record)
    document.pop("run_id", None)
    return {"name": item_name(record), **document}


def document(command: str, **fields: Any) -> dict[str, Any]:
    """The ``--json`` document of ``command``: its fields and the schema version."""
    return {"schema_version": SCHEMA_VERSION, "command": command, **_plain(fields)}


def runs_document(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return document("runs", runs=[public(run) for run in runs])


def items_document(run_id: str, items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return document("items", run_id=run_id, items=[item_document(item) for item in items])


def dumps(value: Mapping[str, Any], *, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, default=str)


def schema(command: str) -> dict[str, Any]:
    """The JSON Schema of ``command``'s ``--json`` document."""
    text = resources.files(SCHEMAS_PACKAGE).joinpath(f"{command}.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def schema_names() -> list[str]:
    return sorted(
        entry.name.removesuffix(".json")
        for entry in resources.files(SCHEMAS_PACKAGE).iterdir()
        if entry.name.endswith(".json")
    )
