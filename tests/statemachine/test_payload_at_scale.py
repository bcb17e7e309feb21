"""Payloads stay pointers at any size: 100,000 items never come near the 256 KiB quota."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from scenario_support import FIXTURE_JOBS, ROOT
from tests.polling import ended_execution, poll

from stepburst_local import LocalEngine

pytestmark = [pytest.mark.statemachine, pytest.mark.slow]

ITEMS = 100_000
SMALL = 16 * 1024


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    """Without the scenarios' short Lambda timeout: units of 100 items run on Lambda."""
    with LocalEngine(ROOT, jobs_dir=FIXTURE_JOBS, time_scale=0.01, quiet=True) as running:
        yield running


def test_a_run_of_100000_items_keeps_every_payload_small(engine: LocalEngine) -> None:
    execution_input = {"job": "scenario-bulk", "input": {"items": f"ok-000001-{ITEMS:06d}"}}
    assert len(json.dumps(execution_input)) < 200  # a range expression, not a list

    arn = engine.start_execution(execution_input)
    child = poll(
        lambda: next((c for c in engine.map_run_children(arn) if c.status == "SUCCEEDED"), None),
        # The run cannot end before one of its units has succeeded, whatever its status.
        fail_if=lambda: ended_execution(engine.describe_execution(arn)),
        what="a unit of the 100,000-item run succeeds",
        timeout=300,
        interval=0.2,
    )
    # The shape of the run is known once units finish; the rest is the same many times over.
    engine.client("stepfunctions").stop_execution(executionArn=arn)
    engine.wait_for_execution(arn, timeout=60)

    history = engine.history(arn)
    plan = json.loads(
        next(e for e in history if e["type"] == "TaskSucceeded")["taskSucceededEventDetails"][
            "output"
        ]
    )["Payload"]
    assert plan["items"] == ITEMS
    fan_out = next(e for e in history if e["type"] == "MapStateEntered")[
        "stateEnteredEventDetails"
    ]["input"]
    assert len(fan_out.encode()) < SMALL
    for event in history:
        for details in event.values():
            if isinstance(details, dict):
                for field in ("input", "output"):
                    assert len(str(details.get(field, "")).encode()) < SMALL, event["type"]
    manifest = json.loads(
        engine.client("s3")
        .get_object(Bucket=plan["manifest"]["bucket"], Key=plan["manifest"]["key"])["Body"]
        .read()
    )
    assert sum(len(unit["items"]) for unit in manifest) == ITEMS
    assert len(json.dumps(child.input).encode()) < 256 * 1024
