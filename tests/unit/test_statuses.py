"""Statuses are enums whose values are the strings the ledger and the state machine hold."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any

import orjson
import pytest
from boto3.dynamodb.types import TypeSerializer

from stepburst import statuses
from stepburst.statuses import ItemStatus, PlanStatus, RunStatus, TriggerStatus

from .asl_support import all_states

pytestmark = pytest.mark.unit

ENUMS = [
    value
    for value in vars(statuses).values()
    if isinstance(value, type) and issubclass(value, StrEnum) and value is not StrEnum
]
# The status each Choice of the state machine reads, and the enum that value comes from.
CHOSEN_ON = {"$.plan.status": PlanStatus, "$.run.status": RunStatus}
DYNAMODB_WRITES = ("arn:aws:states:::dynamodb:updateItem", "arn:aws:states:::dynamodb:putItem")


def choice_rules(rules: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for rule in rules:
        yield rule
        yield from choice_rules(rule.get("And", []) + rule.get("Or", []))
        if "Not" in rule:
            yield from choice_rules([rule["Not"]])


def written_statuses(parameters: Mapping[str, Any]) -> list[str]:
    """The values a DynamoDB task sets or compares the ``status`` attribute to."""
    aliases = parameters.get("ExpressionAttributeNames", {})
    names = ["status", *(alias for alias, name in aliases.items() if name == "status")]
    expressions = " ".join(
        parameters.get(key, "") for key in ("UpdateExpression", "ConditionExpression")
    )
    compared = (rf"(?<![\w#]){re.escape(name)}\s*(?:=|<>)\s*(:\w+)" for name in names)
    placeholders = [found for pattern in compared for found in re.findall(pattern, expressions)]
    values = parameters.get("ExpressionAttributeValues", {})
    return [values[placeholder]["S"] for placeholder in placeholders]


def test_every_status_the_state_machine_writes_to_the_ledger_is_an_item_status() -> None:
    written: list[str] = []
    for name, state in all_states():
        if state.get("Resource") in DYNAMODB_WRITES:
            parameters = state["Parameters"]
            # Only item records: their sort key is the item's own, from the manifest.
            assert parameters["Key"]["sk"] == {"S.$": "$.item.sk"}, name
            written += written_statuses(parameters)
    assert written, "the state machine no longer writes item statuses: update this test"
    assert set(written) <= set(ItemStatus)


def test_every_status_the_state_machine_chooses_on_is_a_member() -> None:
    chosen: dict[str, set[str]] = {}
    for _, state in all_states():
        for rule in choice_rules(state.get("Choices", [])):
            variable = rule.get("Variable", "")
            if variable.endswith(".status"):
                chosen.setdefault(variable, set()).add(rule["StringEquals"])
    assert set(chosen) == set(CHOSEN_ON)
    for variable, values in chosen.items():
        assert values <= set(CHOSEN_ON[variable]), variable


def test_values_are_the_strings_the_ledger_already_holds() -> None:
    for enum in ENUMS:
        assert all(member.value == member.name for member in enum), enum
    assert {"RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"} <= set(RunStatus)
    assert {"RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"} <= set(ItemStatus)
    assert {"CLAIMED", "IGNORED"} <= set(TriggerStatus)


@pytest.mark.parametrize("status", [ItemStatus.FAILED, RunStatus.SUCCEEDED, PlanStatus.PLANNED])
def test_a_status_travels_as_its_plain_string(status: StrEnum) -> None:
    value = status.value
    assert json.dumps({"status": status}) == json.dumps({"status": value})
    assert orjson.loads(orjson.dumps({"status": status})) == {"status": value}
    assert TypeSerializer().serialize(status) == {"S": value}
    assert f"{status}" == value
