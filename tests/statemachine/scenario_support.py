"""Helpers for the state machine scenarios: start a job, read its run from the ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepburst_local import LocalEngine

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_JOBS = ROOT / "tests" / "fixtures" / "jobs"
LAMBDA_TIMEOUT_SECONDS = 2


@dataclass
class Run:
    execution: dict[str, Any]
    arn: str
    run_id: str
    record: dict[str, Any]
    items: list[dict[str, Any]]

    @property
    def status(self) -> str:
        return str(self.execution["status"])

    def item(self, index: int) -> dict[str, Any]:
        return next(item for item in self.items if int(item["item"]) == index)


def run_job(engine: LocalEngine, job: str, items: list[str], timeout: float = 60) -> Run:
    """Start ``job`` manually with ``items``, wait for the execution, read the ledger."""
    arn = engine.start_execution({"job": job, "input": {"items": items}})
    execution = engine.wait_for_execution(arn, timeout=timeout)
    run_id = plan_output(engine, arn)["run_id"]
    ledger = engine.ledger()
    return Run(
        execution=execution,
        arn=arn,
        run_id=run_id,
        record=ledger.get_run(run_id) or {},
        items=sorted(ledger.iter_items(run_id), key=lambda item: int(item["item"])),
    )


def plan_output(engine: LocalEngine, arn: str) -> dict[str, Any]:
    for event in engine.history(arn):
        if event["type"] == "TaskSucceeded":
            payload: dict[str, Any] = json.loads(event["taskSucceededEventDetails"]["output"])
            return dict(payload["Payload"])
    raise AssertionError(f"{arn} has no planned run")


def child_events(engine: LocalEngine, arn: str) -> list[list[tuple[str, str | None]]]:
    """Each Distributed Map child's history as (event type, error name) pairs."""
    children = []
    for child in engine.map_run_children(arn):
        events = []
        for event in child.history or []:
            details = event.get("taskFailedEventDetails") or {}
            events.append((str(event["type"]), details.get("error")))
        children.append(events)
    return children


def failure_exit_code(item: dict[str, Any]) -> int | None:
    """The container exit code recorded with an item's failure."""
    if isinstance(item.get("exit_code"), int | float):
        return int(item["exit_code"])
    failure = item.get("failure")
    if isinstance(failure, str):
        failure = json.loads(failure)
    if not isinstance(failure, dict):
        return None
    code = failure.get("exit_code")
    return int(code) if isinstance(code, int | float) else None
