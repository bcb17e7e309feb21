"""CloudWatch Logs: the log events of some log groups that contain a phrase."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from stepburst import aws
from stepburst.adapters.translation import Codes, translated
from stepburst.errors import ResourceNotFoundError

# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html
_CODES: Codes = {"ResourceNotFoundException": ResourceNotFoundError}


@dataclass(frozen=True, slots=True)
class LogEvent:
    group: str
    stream: str
    timestamp_ms: int
    message: str
    event_id: str


def filter_events(group: str, phrase: str, *, start_ms: int | None = None) -> Iterator[LogEvent]:
    """The group's events that contain ``phrase`` exactly, oldest first within each page.

    A quoted filter term matches the exact phrase, so a run id's hyphens are not read as the
    pattern's operators (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html).
    A group that does not exist (a function never invoked yet) has no events.
    """
    quoted = '"' + phrase.replace('"', "") + '"'
    arguments: dict[str, object] = {"logGroupName": group, "filterPattern": quoted}
    if start_ms is not None:
        arguments["startTime"] = start_ms
    paginator = aws.client("logs").get_paginator("filter_log_events")
    try:
        with translated(f"reading log group {group}", _CODES):
            for page in paginator.paginate(**arguments):  # type: ignore[arg-type]
                for event in page.get("events", []):
                    yield LogEvent(
                        group=group,
                        stream=str(event.get("logStreamName", "")),
                        timestamp_ms=int(event.get("timestamp", 0)),
                        message=str(event.get("message", "")),
                        event_id=str(event.get("eventId", "")),
                    )
    except ResourceNotFoundError:
        return
