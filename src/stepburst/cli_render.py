"""What the CLI shows people: Rich tables, a run's status, and its live progress.

Rich decides colour per stream: none when the output is not a terminal or ``NO_COLOR`` is set
(https://no-color.org), as Rich's Console reads both. Scripts use ``--json`` instead
(``stepburst.cli_documents``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from stepburst.cli_documents import item_name
from stepburst.statuses import ItemStatus, RunStatus

STATUS_STYLES: dict[str, str] = {
    RunStatus.SUCCEEDED: "green",
    RunStatus.FAILED: "red",
    RunStatus.CANCELLED: "yellow",
    RunStatus.RUNNING: "cyan",
    ItemStatus.RETRYING: "yellow",
}
BAR_WIDTH = 30
# Live redraws at most this often; the run is polled at its own interval.
REFRESHES_PER_SECOND = 4


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # Rich would exit 1 here; the CLI's edge exits 141 for a closed pipe, as documented.
        self.quiet = True
        raise BrokenPipeError


def console(out: TextIO, *, stderr: bool = False) -> Console:
    # A width for streams that are not terminals (pipes, files), where Rich would use 80 and
    # cut long causes: wide enough that a line is never wrapped by Rich itself.
    width = None if out.isatty() else 200
    return _Console(file=out, width=width, stderr=stderr, highlight=False, soft_wrap=not width)


def styled_status(status: Any) -> Text:
    text = str(status) if status is not None else ""
    return Text(text, style=STATUS_STYLES.get(text, ""))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: int = 0) -> Table:
    """A borderless table; the last ``numeric`` columns are right-aligned."""
    shown = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold")
    for index, header in enumerate(headers):
        right = index >= len(headers) - numeric
        shown.add_column(header, justify="right" if right else "left", overflow="fold")
    for row in rows:
        shown.add_row(*(cell if isinstance(cell, Text) else _cell(cell) for cell in row))
    return shown


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


# Spaces at the end of a line, before any closing colour codes.
_TRAILING_SPACES = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$", re.MULTILINE)


def print_trimmed(con: Console, renderable: Any) -> None:
    """Print without the spaces Rich pads a table's last column with."""
    with con.capture() as captured:
        con.print(renderable)
    con.file.write(_TRAILING_SPACES.sub(r"\1", captured.get()))


def print_table(con: Console, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        con.print(Text("(none)", style="dim"))
        return
    print_trimmed(con, table(headers, rows))


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


# -- a run's status ----------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(
    counts: Mapping[str, int], planned: int, status: str, elapsed: float | None
) -> Text:
    """``[####x.....] 12/40 done, 1 failed, 3 running  0:42 elapsed, ETA 1:53  RUNNING``."""
    done = counts.get(ItemStatus.SUCCEEDED, 0)
    failed = counts.get(ItemStatus.FAILED, 0)
    running = counts.get(ItemStatus.RUNNING, 0) + counts.get(ItemStatus.RETRYING, 0)
    whole = max(planned, 1)
    filled = min(BAR_WIDTH, round(BAR_WIDTH * done / whole))
    broken = min(BAR_WIDTH - filled, round(BAR_WIDTH * failed / whole))
    line = Text("[")
    line.append("#" * filled, style="green")
    line.append("x" * broken, style="red")
    line.append("." * (BAR_WIDTH - filled - broken), style="dim")
    line.append(f"] {done}/{planned} done, {failed} failed, {running} running")
    if elapsed is not None:
        line.append(f"  {duration(elapsed)} elapsed")
        eta = estimate_remaining(done + failed, planned, elapsed)
        if eta is not None and status == RunStatus.RUNNING:
            line.append(f", ETA {duration(eta)}")
    line.append("  ")
    line.append_text(styled_status(status))
    return line


def estimate_remaining(finished: int, planned: int, elapsed: float) -> float | None:
    """Seconds left at the pace so far; None before the first item ends."""
    if finished <= 0 or planned <= finished:
        return None if finished <= 0 else 0.0
    return elapsed / finished * (planned - finished)


def route_table(by_route: Mapping[str, Mapping[str, int]]) -> Table:
    rows = [
        (
            route,
            counts.get(ItemStatus.SUCCEEDED, 0),
            counts.get(ItemStatus.FAILED, 0),
            counts.get(ItemStatus.RUNNING, 0) + counts.get(ItemStatus.RETRYING, 0),
            sum(counts.values()),
        )
        for route, counts in sorted(by_route.items())
    ]
    shown = table(("ROUTE", "SUCCEEDED", "FAILED", "RUNNING", "SEEN"), rows)
    for column in shown.columns[1:]:
        column.justify = "right"
    return shown


def status_view(
    document: Mapping[str, Any], elapsed: float | None, *, finished: bool = False
) -> Group:
    """What ``status`` shows: the run, its progress, its routes, then its cause and summary."""
    run = document["run"]
    parts: list[Any] = []
    head = Text()
    head.append(f"run {run.get('run_id')}", style="bold")
    head.append(f"  job {run.get('job')}  ")
    head.append_text(styled_status(document["status"]))
    parts.append(head)
    parts.append(
        progress_line(
            document["items"], int(run.get("planned_items") or 0), document["status"], elapsed
        )
    )
    if document["routes"]:
        parts.append(route_table(document["routes"]))
    if finished or document["status"] != RunStatus.RUNNING:
        if run.get("cause"):
            parts.append(Text.assemble(("cause: ", "bold red"), str(run["cause"])))
        if document.get("summary_uri"):
            parts.append(Text.assemble(("summary: ", "bold"), str(document["summary_uri"])))
        if document.get("output_uri"):
            parts.append(Text.assemble(("outputs: ", "bold"), str(document["output_uri"])))
    return Group(*parts)


class _LiveStatus:
    """The status view drawn at each refresh, so elapsed time and ETA tick between polls."""

    def __init__(self, elapsed_of: Callable[[Mapping[str, Any]], float | None]) -> None:
        self.document: Mapping[str, Any] | None = None
        self.elapsed_of = elapsed_of

    def __rich__(self) -> Group:
        assert self.document is not None
        return status_view(self.document, self.elapsed_of(self.document))


def watch(
    con: Console,
    documents: Iterator[Mapping[str, Any]],
    elapsed_of: Callable[[Mapping[str, Any]], float | None],
) -> Mapping[str, Any]:
    """Follow a run on a terminal, redrawing in place; the last frame stays, printed once."""
    view = _LiveStatus(elapsed_of)
    view.document = next(documents)
    final = view.document
    with Live(view, console=con, refresh_per_second=REFRESHES_PER_SECOND, transient=True):
        for document in documents:
            final = document
            # The run's end is not drawn live: it is printed once, below, and stays.
            if document["status"] == RunStatus.RUNNING:
                view.document = document
    # Transient: Live erases its frame on exit, so the final view is printed exactly once.
    print_trimmed(con, status_view(final, elapsed_of(final), finished=True))
    return final


def items_rows(items: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            item_name(item),
            styled_status(item.get("status")),
            item.get("route"),
            item.get("attempts"),
            item.get("exit_code", ""),
            _seconds(item.get("duration_seconds")),
            item.get("records", ""),
            item_error(item),
        )
        for item in items
    ]


def item_error(item: Mapping[str, Any]) -> str:
    """``CommandFailedError: exit 3: <the command's last lines>``: the class and its cause."""
    error, cause = str(item.get("error") or ""), str(item.get("cause") or "")
    if error and cause and not cause.startswith(error):
        return f"{error}: {cause}"
    return cause or error


def _seconds(value: Any) -> str:
    if value is None or value == "":
        return ""
    try:
        return f"{float(value):.1f}"
    except (TypeError, ValueError):
        return str(value)


LEVEL_STYLES = {"ERROR": "bold red", "CRITICAL": "bold red", "WARNING": "yellow", "DEBUG": "dim"}


def log_line(line: Any) -> Text:
    """One log line of ``stepburst logs``: time, source, level, message, then any traceback."""
    record = line.record or {}
    level = str(record.get("level", ""))
    shown = Text(line.when.strftime("%H:%M:%S.%f")[:-3], style="dim")
    shown.append(f" {line.source:<14} ", style="cyan")
    if level:
        shown.append(f"{level:<7} ", style=LEVEL_STYLES.get(level, ""))
    shown.append(str(record.get("message", line.message)))
    if record.get("item") is not None:
        shown.append(f"  item={record['item']}", style="dim")
    # A failed item logs its traceback (with secrets redacted) as "traceback".
    failure = record.get("exception") or record.get("traceback")
    if failure:
        shown.append("\n" + str(failure).rstrip(), style="red")
    return shown
