"""What `stepburst status` draws: progress with elapsed time and ETA, and a live watch whose
last frame is printed exactly once."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from stepburst import cli_render

pytestmark = pytest.mark.unit


def status(done: int, state: str = "RUNNING", planned: int = 40) -> dict[str, Any]:
    return {
        "run": {"run_id": "job-1", "job": "job", "planned_items": planned, "cause": ""},
        "status": state,
        "items": {"SUCCEEDED": done, "RUNNING": 2} if done < planned else {"SUCCEEDED": done},
        "routes": {"lambda": {"SUCCEEDED": done}},
        "summary_uri": "s3://out/job/job-1/_SUMMARY.json" if state != "RUNNING" else None,
        "output_uri": None,
    }


def test_the_progress_line_has_elapsed_time_and_an_eta() -> None:
    line = cli_render.progress_line({"SUCCEEDED": 10}, 40, "RUNNING", 30.0).plain
    assert "10/40 done" in line
    assert "0:30 elapsed" in line
    # 10 items in 30 s: 30 more take 90 s.
    assert "ETA 1:30" in line


def test_no_eta_before_an_item_ends() -> None:
    assert "ETA" not in cli_render.progress_line({}, 40, "RUNNING", 5.0).plain


def test_a_live_watch_prints_its_last_frame_once() -> None:
    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, width=120, color_system=None)
    documents = iter([status(0), status(20), status(40, "SUCCEEDED")])
    final = cli_render.watch(terminal, documents, lambda document: 12.0)
    assert final["status"] == "SUCCEEDED"
    text = out.getvalue()
    assert text.count("summary: s3://out/job/job-1/_SUMMARY.json") == 1
    assert text.rstrip().endswith("summary: s3://out/job/job-1/_SUMMARY.json")


def test_tables_have_no_trailing_spaces() -> None:
    out = io.StringIO()
    con = cli_render.console(out)
    cli_render.print_table(con, ("A", "LONGER HEADER"), [("x", "1"), ("a long cell", "")])
    assert all(line == line.rstrip() for line in out.getvalue().splitlines())


def test_an_items_error_shows_its_cause_not_only_its_class() -> None:
    item = {"error": "CommandFailedError", "cause": "exit 3: no such file: in.fits"}
    assert cli_render.item_error(item) == "CommandFailedError: exit 3: no such file: in.fits"
    assert cli_render.item_error({"error": "CommandFailedError"}) == "CommandFailedError"
