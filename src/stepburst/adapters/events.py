"""EventBridge: put events on a bus."""

from __future__ import annotations

from typing import Literal

from stepburst import aws
from stepburst.adapters.translation import Codes, translated
from stepburst.errors import AwsError, ResourceNotFoundError, ThrottledError

# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
_CODES: Codes = {"ResourceNotFoundException": ResourceNotFoundError}


def put_event(bus: str, source: str, detail_type: str, detail: str) -> None:
    """Put one event whose detail is the JSON text ``detail``.

    PutEvents answers 200 even when it rejects an entry; a rejected entry raises here too.
    """
    doing = f"putting a {detail_type!r} event on bus {bus}"
    with translated(doing, _CODES):
        response = aws.client("events").put_events(
            Entries=[
                {
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": detail,
                    "EventBusName": bus,
                }
            ]
        )
    if not response.get("FailedEntryCount"):
        return
    (entry,) = response["Entries"]
    code = entry.get("ErrorCode", "")
    message = f"{doing}: {code}: {entry.get('ErrorMessage', '')}"
    # An entry's codes are PutEvents' own; throttling is the one that waiting fixes.
    if code == "ThrottlingException":
        raise ThrottledError(message, code=code)
    raise AwsError(message, code=code)


RuleState = Literal["DISABLED", "ENABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"]


def rule_state(name: str) -> tuple[RuleState, str]:
    """A rule's state and description, which PutRule would otherwise reset."""
    with translated(f"describing rule {name}", _CODES):
        rule = aws.client("events").describe_rule(Name=name)
    return rule.get("State", "ENABLED"), str(rule.get("Description", ""))


def put_rule_pattern(name: str, pattern: str) -> None:
    """Replace an existing rule's event pattern, keeping its state, description and targets."""
    state, description = rule_state(name)
    with translated(f"putting the event pattern of rule {name}", _CODES):
        aws.client("events").put_rule(
            Name=name, EventPattern=pattern, State=state, Description=description
        )


def rule_pattern(name: str) -> str:
    with translated(f"describing rule {name}", _CODES):
        return str(aws.client("events").describe_rule(Name=name).get("EventPattern", ""))
