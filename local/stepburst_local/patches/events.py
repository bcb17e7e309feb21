"""Triggers: S3 -> EventBridge events as S3 sends them, EventBridge -> Step Functions and
Lambda targets."""

from __future__ import annotations

import copy
import datetime
import itertools
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

from stepburst_local.moto_internals import (
    EventTemplateParser,
    JsonRESTError,
    Rule,
    S3Backend,
    events_backends,
    json_path,
    s3_notifications,
    stepfunctions_parser_backends,
)
from stepburst_local.patches.lambda_ import invoke_asynchronously
from stepburst_local.patching import Hook, patch

LOG = logging.getLogger(__name__)

_sequencer = itertools.count(1)


def s3_object_created_event(
    *,
    account_id: str,
    region: str,
    bucket: str,
    key: str,
    size: int,
    etag: str,
    version_id: str | None,
    reason: str,
    detail_type: str = "Object Created",
) -> dict[str, Any]:
    """The event S3 sends to EventBridge for a new object, field for field as on AWS.

    https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html

    The object key is URL-encoded the way S3 encodes keys in event notifications (form
    encoding: a space becomes ``+``, ``+`` becomes ``%2B``; ``/`` is kept), so consumers
    decode it with ``urllib.parse.unquote_plus`` as on AWS.
    """
    now = datetime.datetime.now(tz=datetime.UTC).replace(microsecond=0)
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "etag": etag}
    if version_id is not None:
        obj["version-id"] = version_id
    obj["sequencer"] = f"{time.time_ns() // 1000:012X}{next(_sequencer):06X}"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": account_id,
        "time": now.isoformat().replace("+00:00", "Z"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": secrets.token_hex(8).upper(),
            "requester": account_id,
            "source-ip-address": "127.0.0.1",
            "reason": reason,
        },
    }


_S3_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}

s3_eventbridge_event = Hook(
    "s3_eventbridge_event",
    why="moto's S3 -> EventBridge event differs from AWS's (eTag for etag, a numeric time, "
    "reason ObjectCreated instead of PutObject, a fixed sequencer, a raw key, every event "
    "bus) and every PutObject also sends a tagging event; CopyObject and multipart uploads "
    "send two Object Created. One Object Created is built as AWS builds it and sent to the "
    "default bus only; other S3 events are not sent.",
    upstream="getmoto/moto#7363 (the event types and reasons S3 sends); the event's fields: "
    "no upstream issue found",
)


@patch(s3_eventbridge_event, s3_notifications, "_send_event_bridge_message", wraps=False)
def _send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    """Replaces moto's: its event is built field by field differently (see the hook)."""
    if not event_name.startswith("s3:ObjectCreated:"):
        # moto also reports its internal tagging of every new object; AWS sends Object
        # Tags Added only for PutObjectTagging, and this project needs Object Created only.
        return
    if event_name == "s3:ObjectCreated:Put" and getattr(_s3_state, "composite", False):
        return  # the inner PutObject of a CopyObject/CompleteMultipartUpload
    # Built from the stored object's own fields: nothing here may fail but the engine's code
    # (a delivery's failure, which never fails the upload, is send_to_default_bus's).
    versioned = bool(bucket.is_versioned)
    event = s3_object_created_event(
        account_id=account_id,
        region=bucket.region_name,
        bucket=bucket.name,
        key=key.name,
        size=int(key.size),
        etag=key.etag.replace('"', ""),
        version_id=key.version_id if versioned else None,
        reason=_S3_REASONS.get(event_name, event_name.rsplit(":", 1)[-1]),
        detail_type=s3_notifications._detail_type(event_name),
    )
    send_to_default_bus(account_id, bucket.region_name, event)


def send_to_default_bus(account_id: str, region: str, event: dict[str, Any]) -> None:
    """Deliver an AWS service's event to the rules of the account's default event bus, where
    AWS services send their events. A target that refuses it is logged, not raised: on AWS the
    service that emitted the event does not learn how its delivery went."""
    bus = events_backends[account_id][region].event_buses.get("default")
    if bus is None:
        return
    rules: list[Any] = list(bus.rules.values())
    for rule in rules:
        try:
            # moto's own target transformers need fields service events do not have.
            rule.send_to_targets(event, transform_input=False)
        except (JsonRESTError, NotImplementedError) as error:
            # A target's service refused it (e.g. no such queue), or moto cannot deliver to
            # that kind of target.
            LOG.warning(
                "rule %s dropped a %s event: %s: %s",
                rule.name,
                event.get("source"),
                type(error).__name__,
                error,
            )


_s3_state = threading.local()


def _composite(original: Callable[..., Any], self: Any, *args: Any, **kwargs: Any) -> Any:
    # moto's CopyObject and CompleteMultipartUpload store the object with its own PutObject,
    # which sends a second Object Created; AWS sends one, with reason CopyObject or
    # CompleteMultipartUpload.
    outer = getattr(_s3_state, "composite", False)
    _s3_state.composite = True
    try:
        return original(self, *args, **kwargs)
    finally:
        _s3_state.composite = outer


for _operation in ("copy_object", "complete_multipart_upload"):
    patch(s3_eventbridge_event, S3Backend, _operation)(_composite)


eventbridge_states_target = Hook(
    "eventbridge_states_target",
    why="moto's EventBridge cannot target a state machine (NotImplementedError, swallowed "
    "by S3). A matching rule starts an execution with the (transformed) event as input and "
    "an explicit name (without one moto names every execution 'None'). Disabled rules do "
    "not fire.",
    upstream="getmoto/moto#8452",
)


@patch(eventbridge_states_target, Rule, "send_to_targets")
def _send_to_state_machines(
    original: Callable[..., None],
    self: Any,
    original_event: dict[str, Any],
    transform_input: bool = True,
) -> None:
    _send_own_targets(original, self, original_event, transform_input, ":states:", _start)


def _start(target: dict[str, Any], event: dict[str, Any]) -> None:
    arn = str(target["Arn"])
    parts = arn.split(":")
    backend = stepfunctions_parser_backends[parts[4]][parts[3]]
    name = str(event.get("id") or uuid.uuid4())
    payload = _target_input(target, event)
    backend.start_execution(arn, name=name, execution_input=json.dumps(payload))


eventbridge_lambda_target = Hook(
    "eventbridge_lambda_target",
    why="moto's EventBridge cannot target a Lambda function (NotImplementedError, which fails "
    "a PutEvents and is swallowed by S3). A matching rule invokes its Lambda targets "
    "asynchronously (the Event invocation type) with the (transformed) event on the engine's "
    "Lambda runtime; a failing function is retried twice, as Lambda retries asynchronous "
    "invocations, and never fails the publisher.",
    upstream="no upstream issue found",
)


@patch(eventbridge_lambda_target, Rule, "send_to_targets")
def _send_to_functions(
    original: Callable[..., None],
    self: Any,
    original_event: dict[str, Any],
    transform_input: bool = True,
) -> None:
    _send_own_targets(original, self, original_event, transform_input, ":lambda:", _invoke)


def _invoke(target: dict[str, Any], event: dict[str, Any]) -> None:
    # EventBridge invokes Lambda with the Event invocation type:
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html
    payload = json.dumps(_target_input(target, event)).encode()
    if not invoke_asynchronously(str(target["Arn"]), payload):
        LOG.warning("no engine runs %s: the event is dropped", target["Arn"])


def _send_own_targets(  # noqa: PLR0917 - moto's arguments and the target kind
    original: Callable[..., None],
    rule: Any,
    event: dict[str, Any],
    transform_input: bool,
    service: str,
    deliver: Callable[[dict[str, Any], dict[str, Any]], None],
) -> None:
    """Deliver ``event`` to the rule's targets of one service (``:states:``, ``:lambda:``);
    moto delivers to the others."""
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html
    if getattr(rule, "state", "ENABLED") != "ENABLED":
        return
    if not rule.event_pattern.matches_event(event):
        return
    others = []
    delivered = _as_delivered(event)
    for target in rule.targets:
        if service not in str(target.get("Arn", "")):
            others.append(target)
            continue
        # EventBridge never reports a target's failure to the publisher (on AWS it retries,
        # then dead-letters); the put that triggered this must not fail either.
        try:
            deliver(target, delivered)
        except (JsonRESTError, ValueError) as error:
            # The target's service refused it (no such state machine ...), or the target's
            # Input is not JSON.
            LOG.warning(
                "EventBridge could not deliver to %s: %s: %s",
                target.get("Arn"),
                type(error).__name__,
                error,
            )
    if others:
        clone = copy.copy(rule)
        clone.targets = others
        original(clone, _as_moto_event(event), transform_input)


def _as_moto_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as moto's own target delivery expects it (an epoch ``time``, as its
    PutEvents builds events); service events carry an ISO time."""
    if not isinstance(event.get("time"), str):
        return event
    moment = datetime.datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    return {**event, "time": moment.timestamp(), "ingestion-time": time.time()}


def _as_delivered(event: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge hands it to a target: moto's PutEvents gives it an epoch
    ``time`` and an ``ingestion-time`` that targets on AWS never see."""
    if not isinstance(event.get("time"), int | float) and "ingestion-time" not in event:
        return event
    delivered = {key: value for key, value in event.items() if key != "ingestion-time"}
    if isinstance(delivered.get("time"), int | float):
        moment = datetime.datetime.fromtimestamp(delivered["time"], tz=datetime.UTC)
        delivered["time"] = moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return delivered


def _target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        return json_path.extract_json(target["InputPath"], event)
    transformer = target.get("InputTransformer")
    if transformer:
        with_ingestion_time: Any = {"ingestion-time": event.get("time"), **event}
        rendered = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=with_ingestion_time,
        )
        return json.loads(rendered) if isinstance(rendered, str) else rendered
    return event


HOOKS = (s3_eventbridge_event, eventbridge_states_target, eventbridge_lambda_target)
