"""A run's log lines, from its functions and workers: what ``stepburst logs`` shows.

The functions and workers log structured Powertools records that carry ``run_id`` (and
``item`` where one item is concerned). The lines are found with FilterLogEvents on the stack's
log groups (output RunLogGroupNames), searching for the run id, then kept only when the
record's own ``run_id`` (and ``item``) match, so a run id that prefixes another never mixes
their lines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stepburst.adapters import logs
from stepburst.cli_documents import document as cli_document
from stepburst.cli_documents import item_name
from stepburst.errors import InvalidInputError
from stepburst.operations import Operations
from stepburst.stack import StackNotFoundError
from stepburst.statuses import TERMINAL_RUN_STATUSES

LOG_GROUPS_OUTPUT = "RunLogGroupNames"
# Lines a little older than the run's recorded start still belong to it (Plan logs first).
START_SLACK_MS = 5 * 60 * 1000
FOLLOW_INTERVAL_SECONDS = 2.0
ITEM_NAMES_SHOWN = 10


@dataclass(frozen=True, slots=True)
class LogLine:
    run_id: str
    group: str
    stream: str
    timestamp_ms: int
    message: str
    record: dict[str, Any] | None

    @property
    def source(self) -> str:
        """The function or worker that wrote the line: the group's last part."""
        return self.group.rstrip("/").rsplit("/", 1)[-1]

    @property
    def when(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)

    def document(self) -> dict[str, Any]:
        record = self.record or {}
        return cli_document(
            "logs",
            run_id=self.run_id,
            timestamp=self.when.isoformat().replace("+00:00", "Z"),
            source=self.source,
            log_group=self.group,
            log_stream=self.stream,
            level=record.get("level"),
            item=record.get("item"),
            message=str(record.get("message", self.message)),
            exception=record.get("exception") or record.get("traceback"),
            record=self.record,
        )


def _record(message: str) -> dict[str, Any] | None:
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _timestamp_ms(text: Any) -> int | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def log_groups(ops: Operations) -> list[str]:
    names = ops.stack.outputs.get(LOG_GROUPS_OUTPUT)
    if not names:
        raise StackNotFoundError(
            f"stack {ops.stack.name!r} has no output {LOG_GROUPS_OUTPUT}: deploy it again to "
            "read its logs"
        )
    return [name for name in names.split(",") if name]


def item_index(ops: Operations, run_id: str, wanted: str) -> int:
    """The index of the run's item called ``wanted`` (its name, or its index)."""
    items = ops.items(run_id)
    for item in items:
        if wanted in (str(item.get("value") or ""), item_name(item)):
            return int(item["item"])
    if wanted.lstrip("#").isdigit():
        return int(wanted.lstrip("#"))
    names = [item_name(item) for item in items[:ITEM_NAMES_SHOWN]]
    more = f" and {len(items) - ITEM_NAMES_SHOWN} more" if len(items) > ITEM_NAMES_SHOWN else ""
    raise InvalidInputError(
        "--item", f"run {run_id!r} has no item {wanted!r} (its items: {', '.join(names)}{more})"
    )


def _belongs(line: LogLine, run_id: str, item: int | None) -> bool:
    if line.record is None:
        # A plain line (a worker's own output) that names the run: kept unless one item is asked.
        return item is None
    if str(line.record.get("run_id", "")) != run_id:
        return False
    return item is None or str(line.record.get("item")) == str(item)


def _search(
    groups: list[str], run_id: str, item: int | None, start_ms: int | None, seen: set[str]
) -> list[LogLine]:
    found = []
    for group in groups:
        for event in logs.filter_events(group, run_id, start_ms=start_ms):
            key = f"{group}/{event.stream}/{event.event_id}"
            if key in seen:
                continue
            seen.add(key)
            line = LogLine(
                run_id=run_id,
                group=group,
                stream=event.stream,
                timestamp_ms=event.timestamp_ms,
                message=event.message,
                record=_record(event.message),
            )
            if _belongs(line, run_id, item):
                found.append(line)
    found.sort(key=lambda line: line.timestamp_ms)
    return found


def run_log_lines(
    ops: Operations,
    run_id: str,
    *,
    item: str | None = None,
    follow: bool = False,
    interval: float = FOLLOW_INTERVAL_SECONDS,
) -> Iterator[LogLine]:
    """The run's lines, oldest first; with ``follow``, new ones until the run ends."""
    run = ops.run(run_id)
    groups = log_groups(ops)
    index = item_index(ops, run_id, item) if item is not None else None
    started = _timestamp_ms(run.get("started_at"))
    start_ms = started - START_SLACK_MS if started is not None else None
    seen: set[str] = set()
    while True:
        # Read whether the run had ended before searching, so its last lines are not missed.
        ended = not follow or str(ops.run(run_id).get("status")) in TERMINAL_RUN_STATUSES
        lines = _search(groups, run_id, index, start_ms, seen)
        yield from lines
        if ended:
            return
        if lines:
            # Events arrive out of order across streams: search again from a little before.
            start_ms = lines[-1].timestamp_ms - START_SLACK_MS
        time.sleep(interval)
