"""The sample events under events/: one set per function, each read by its handler's model, so
`sam local invoke -e` and `sam remote invoke --event-file` get what the function takes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from stepburst.payloads import (
    CombinePayload,
    ExecutionStatusChange,
    FinalizePayload,
    PlanFailedPayload,
    PlanPayload,
    RecoverPayload,
    UnitPayload,
)
from stepburst.triggers import parse_trigger
from tests.template_model import project_template, resources_of_type

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
# What a custom resource's function reads besides its ResourceProperties.
CUSTOM_RESOURCE_FIELDS = {
    "RequestType",
    "ResponseURL",
    "StackId",
    "RequestId",
    "ResourceType",
    "LogicalResourceId",
    "ResourceProperties",
}


def function_directories() -> dict[str, str]:
    """Each function's logical id by its directory under functions/."""
    functions = resources_of_type(project_template(), "AWS::Serverless::Function")
    return {
        Path(properties["Properties"]["CodeUri"]).name: logical_id
        for logical_id, properties in functions.items()
    }


def events_of(directory: str) -> list[Path]:
    return sorted((EVENTS / directory).glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def custom_resource_properties(function_id: str) -> dict[str, set[str]]:
    """The property names of each custom resource the function serves, by resource type."""
    found: dict[str, set[str]] = {}
    for resource in project_template()["Resources"].values():
        token = resource.get("Properties", {}).get("ServiceToken")
        if resource["Type"].startswith("Custom::") and token == {
            "Fn::GetAtt": [function_id, "Arn"]
        }:
            found[resource["Type"]] = set(resource["Properties"])
    return found


def test_every_function_has_events() -> None:
    directories = function_directories()
    assert directories
    for directory in directories:
        assert events_of(directory), f"events/{directory}/ has no sample event"
    stray = {path.name for path in EVENTS.iterdir() if path.is_dir()} - set(directories)
    assert not stray, f"events for no function: {stray}"


PAYLOADS: dict[str, type[BaseModel]] = {
    "plan": PlanPayload,
    "process_items": UnitPayload,
    "recover_unit": RecoverPayload,
    "finalize": FinalizePayload,
    "combine": CombinePayload,
}


@pytest.mark.parametrize("directory", sorted(PAYLOADS))
def test_state_machine_payloads_parse_with_their_handlers_model(directory: str) -> None:
    for path in events_of(directory):
        parsed = PAYLOADS[directory].model_validate(load(path))
        if isinstance(parsed, PlanPayload):
            parsed.to_request()
        if isinstance(parsed, RecoverPayload):
            parsed.to_failure()


def test_reconcile_events_parse_as_the_handler_reads_them() -> None:
    kinds = set()
    for path in events_of("reconcile"):
        event = load(path)
        if "detail-type" in event:
            change = ExecutionStatusChange.model_validate(event)
            assert change.detail.status in {"FAILED", "TIMED_OUT", "ABORTED"}
            kinds.add("execution ended")
        else:
            PlanFailedPayload.model_validate(event).to_request()
            kinds.add("plan failed")
    assert kinds == {"execution ended", "plan failed"}


@pytest.mark.parametrize(
    "directory", ["sync_schedules", "sync_upload_rule", "sync_tables", "sync_job_compute"]
)
def test_custom_resource_events_carry_the_templates_properties(directory: str) -> None:
    served = custom_resource_properties(function_directories()[directory])
    assert served
    for path in events_of(directory):
        event = load(path)
        assert set(event) >= CUSTOM_RESOURCE_FIELDS
        assert event["RequestType"] in {"Create", "Update", "Delete"}
        assert set(event["ResourceProperties"]) == served[event["ResourceType"]]


@pytest.mark.parametrize("name", ["manual-start.json", "s3-object-created.json", "scheduled.json"])
def test_the_state_machine_inputs_are_triggers(name: str) -> None:
    parse_trigger(load(EVENTS / name))
