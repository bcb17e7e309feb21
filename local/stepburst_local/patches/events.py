"""Triggers: S3 -> EventBridge events as S3 sends them, EventBridge -> Step Functions targets."""

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
    Rule,
    S3Backend,
    events_backends,
    json_path,
    s3_notifications,
    stepfunctions_parser_backends,
)
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
    try:
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
        bus = events_backends[account_id][bucket.region_name].event_buses.get("default")
        if bus is None:
            return
        rules: list[Any] = list(bus.rules.values())
        for rule in rules:
            # moto's own target transformers need fields S3 events do not have.
            rule.send_to_targets(event, transform_input=False)
    except Exception:  # delivery is asynchronous on AWS: an upload never fails on it
        LOG.exception("S3 -> EventBridge delivery failed")


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
def _send_to_targets(
    original: Callable[..., None],
    self: Any,
    original_event: dict[str, Any],
    transform_input: bool = True,
) -> None:
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html
    if getattr(self, "state", "ENABLED") != "ENABLED":
        return
    if not self.event_pattern.matches_event(original_event):
        return
    others = []
    for target in self.targets:
        arn = str(target.get("Arn", ""))
        if ":states:" not in arn:
            others.append(target)
            continue
        payload = _target_input(target, original_event)
        parts = arn.split(":")
        backend = stepfunctions_parser_backends[parts[4]][parts[3]]
        name = str(original_event.get("id") or uuid.uuid4())
        # EventBridge never reports a target's failure to the publisher (on AWS it retries,
        # then dead-letters); the put that triggered this must not fail either.
        try:
            backend.start_execution(arn, name=name, execution_input=json.dumps(payload))
        except Exception as error:
            LOG.exception("EventBridge could not start %s: %s", arn, error)
    if others:
        clone = copy.copy(self)
        clone.targets = others
        original(clone, original_event, transform_input)


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


HOOKS = (s3_eventbridge_event, eventbridge_states_target)
