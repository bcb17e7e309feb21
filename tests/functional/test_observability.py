"""A run's log lines name it, and every item keeps where it ran, success or failure."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepburst import components
from stepburst.observability import logger

from .handlers import invoke
from .test_coordinator import plan_payload
from .test_job_kinds import jobs, run_units

pytestmark = pytest.mark.functional

EVENTS = Path(__file__).resolve().parents[2] / "events"

__all__ = ["jobs"]


class Lines:
    """What the Powertools logger writes, as JSON documents."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def take(self) -> list[dict[str, object]]:
        text = self.stream.getvalue()
        self.stream.seek(0)
        self.stream.truncate()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def written() -> Iterator[Lines]:
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    lines = Lines()
    previous = handler.setStream(lines.stream)
    try:
        yield lines
    finally:
        handler.setStream(previous)


def test_every_line_of_a_run_names_it_and_every_item_its_request(
    jobs: Path, written: Lines
) -> None:
    trigger = {"job": "dam-periods", "input": {"items": "Dam001/Period12-13"}}
    plan = invoke("plan", plan_payload(trigger))
    run_units(plan)
    invoke("finalize", {"plan": plan, "fanout": {}, "execution_id": "e"})

    lines = written.take()
    assert {line.get("message") for line in lines} >= {"run planned", "unit finished"}
    for line in lines:
        assert line.get("run_id") == plan["run_id"], line
        assert line.get("job") == "dam-periods", line
        assert line.get("correlation_id") == plan["run_id"], line

    items = list(components.ledger().iter_items(plan["run_id"]))
    assert {item["status"] for item in items} == {"SUCCEEDED", "FAILED"}
    for item in items:
        ran = item["placement"]
        assert ran["platform"] == "lambda"
        assert len(ran["request_id"]) == 36
        assert ran["log_group"] == "/aws/lambda/process_items"
        assert ran["log_stream"].startswith("2026/11/21/[$LATEST]")


def test_a_warm_function_forgets_the_last_runs_keys(jobs: Path, written: Lines) -> None:
    first = invoke("plan", plan_payload({"job": "dam-periods", "input": {"items": "A1"}}))
    written.take()
    # An upload that no job takes has no run: its lines must not carry the last one's.
    upload = json.loads((EVENTS / "s3-object-created.json").read_text(encoding="utf-8"))
    upload["detail"]["object"]["key"] = "elsewhere/x.bin"
    ignored = invoke("plan", plan_payload(upload))

    assert ignored["status"] == "IGNORED"
    lines = written.take()
    assert lines
    assert all(line.get("run_id") != first["run_id"] for line in lines)
