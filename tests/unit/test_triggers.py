"""Execution inputs: the sample events in events/ and the errors for bad manual input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepburst.errors import InvalidInputError
from stepburst.settings import ConfigurationError, Settings
from stepburst.triggers import ManualStart, ScheduledStart, UploadTrigger, parse_trigger

pytestmark = pytest.mark.unit

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load_event(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return loaded


def test_s3_event_via_eventbridge_decodes_the_key() -> None:
    trigger = parse_trigger(load_event("s3-object-created.json"))
    assert isinstance(trigger, UploadTrigger)
    assert trigger.bucket == "stepburst-input-example"
    assert trigger.key == "incoming/yelp/businesses 2026-11-21.jsonl"
    assert trigger.version_id == "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
    assert trigger.size == 4093


def test_identity_is_per_object_version() -> None:
    event = load_event("s3-object-created.json")
    first = parse_trigger(event)
    again = parse_trigger(json.loads(json.dumps(event)))
    detail = event["detail"]
    assert isinstance(detail, dict)
    detail["object"]["version-id"] = "another-version"
    newer = parse_trigger(event)
    assert isinstance(first, UploadTrigger)
    assert isinstance(again, UploadTrigger)
    assert isinstance(newer, UploadTrigger)
    assert first.identity == again.identity != newer.identity


def test_unversioned_identity_uses_sequencer_and_etag() -> None:
    event = load_event("s3-object-created.json")
    detail = event["detail"]
    assert isinstance(detail, dict)
    del detail["object"]["version-id"]
    trigger = parse_trigger(event)
    assert isinstance(trigger, UploadTrigger)
    assert trigger.identity.endswith("#00617F08299329D189:7b0fd3c2c4a6a3c3e1d8f3b1a1f0e9d2")


def test_scheduled_and_manual_events() -> None:
    scheduled = parse_trigger(load_event("scheduled.json"))
    assert isinstance(scheduled, ScheduledStart)
    assert scheduled.job == "ztf-alerts-daily"
    manual = parse_trigger(load_event("manual-start.json"))
    assert isinstance(manual, ManualStart)
    assert manual.input == {"key": "incoming/yelp/businesses.jsonl"}


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"input": {}}, "job"),
        ({"job": "x", "input": []}, "input"),
        ({"job": "x", "params": {"A": 1}}, "params.A"),
        ({"job": "x", "surprise": True}, "surprise"),
        ([], "(input)"),
    ],
)
def test_invalid_manual_input_names_the_field(event: object, field: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        parse_trigger(event)
    assert raised.value.field == field


def test_missing_setting_is_named() -> None:
    with pytest.raises(ConfigurationError, match="STEPBURST_LEDGER_TABLE"):
        Settings.from_environment({"STEPBURST_INPUT_BUCKET": "b"})
