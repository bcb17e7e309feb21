"""CloudWatch Logs for the local engine: the functions' and workers' lines, where AWS puts them.

On AWS, Lambda writes a function's output to the log group of its ``LoggingConfig`` and the
awslogs driver writes a container's to the worker log group. Locally the functions run in this
process and the workers as child processes, so this module ships the same lines to the
in-memory CloudWatch Logs: a function's records as they are logged (a logging handler that
knows, per thread, which function is running), a worker's output file when the worker ends.
``stepburst logs`` then reads them with FilterLogEvents exactly as it does on AWS.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)
# PutLogEvents takes at most 10,000 events or 1 MiB a call.
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html
BATCH_EVENTS = 1000
MAX_EVENT_BYTES = 256 * 1024 - 26

_current = threading.local()


@contextlib.contextmanager
def invocation(log_group: str | None, function_name: str) -> Iterator[None]:
    """Within this block, the thread's log records belong to this function's log group."""
    _current.target = (log_group, function_name) if log_group else None
    try:
        yield
    finally:
        _current.target = None


class LogShipper:
    """Writes log lines to the in-memory CloudWatch Logs, creating groups and streams."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client
        self._known: set[tuple[str, str]] = set()
        self._groups: set[str] = set()
        self._lock = threading.Lock()

    def create_group(self, group: str, retention_days: int | None = None) -> None:
        logs = self._client()
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        if retention_days:
            logs.put_retention_policy(logGroupName=group, retentionInDays=retention_days)
        self._groups.add(group)

    def put(self, group: str, stream: str, messages: list[tuple[int, str]]) -> None:
        if not messages:
            return
        logs = self._client()
        with self._lock:
            if group not in self._groups:
                self.create_group(group)
            if (group, stream) not in self._known:
                with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                    logs.create_log_stream(logGroupName=group, logStreamName=stream)
                self._known.add((group, stream))
        for start in range(0, len(messages), BATCH_EVENTS):
            batch = messages[start : start + BATCH_EVENTS]
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[
                    {"timestamp": stamp, "message": text[:MAX_EVENT_BYTES]} for stamp, text in batch
                ],
            )

    def ship_file(self, group: str, stream: str, path: Path) -> None:
        """A worker's output file, one event a line, stamped when it is shipped."""
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            LOG.warning("cannot ship %s: %s", path, error)
            return
        stamp = int(time.time() * 1000)
        self.put(group, stream, [(stamp, line) for line in text.splitlines() if line.strip()])


class FunctionLogHandler(logging.Handler):
    """Ships the records a function logs, formatted as its own handler formats them."""

    def __init__(self, shipper: LogShipper, logger: logging.Logger) -> None:
        super().__init__()
        self.shipper = shipper
        self.logger = logger
        # One stream per function per engine, as Lambda has one per execution environment.
        self.instance = uuid.uuid4().hex

    def format(self, record: logging.LogRecord) -> str:
        # Powertools adds its JSON handler when a function's module is first imported, which
        # may be after this handler was attached: its formatter is looked up when needed.
        if self.formatter is None:
            formatter = next(
                (h.formatter for h in self.logger.handlers if h is not self and h.formatter),
                None,
            )
            if formatter is not None:
                self.setFormatter(formatter)
        return super().format(record)

    def emit(self, record: logging.LogRecord) -> None:
        target = getattr(_current, "target", None)
        if target is None:
            return
        group = target[0]
        try:
            stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{self.instance}"
            self.shipper.put(group, stream, [(int(record.created * 1000), self.format(record))])
        except Exception:  # a log line must never fail the function
            self.handleError(record)


def attach(shipper: LogShipper, logger_names: set[str]) -> list[tuple[logging.Logger, Any]]:
    """Add a shipping handler to each Powertools logger; what to detach on shutdown."""
    attached = []
    for name in logger_names:
        logger = logging.getLogger(name)
        handler = FunctionLogHandler(shipper, logger)
        logger.addHandler(handler)
        attached.append((logger, handler))
    return attached


def detach(attached: list[tuple[logging.Logger, Any]]) -> None:
    for logger, handler in attached:
        logger.removeHandler(handler)
