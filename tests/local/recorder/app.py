"""A Lambda handler for the engine's conformance tests: it records each invocation's event in
S3 and fails the first ``fail_attempts`` invocations of one recording.

Each event is stored under ``received/<key>/<attempt>.json`` in ``RECORD_BUCKET``, where the
key is the event's ``record_as`` (a target's Input or InputTransformer sets it) or, for an
event as EventBridge delivers it, its ``id``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3


class RecordedFailureError(Exception):
    """Raised on purpose, so that the invocation is retried."""


def lambda_handler(event: Any, context: Any) -> dict[str, int]:
    s3 = boto3.client("s3")
    bucket = os.environ["RECORD_BUCKET"]
    key = event.get("record_as") or event.get("id") or "unnamed"
    prefix = f"received/{key}/"
    attempt = int(s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0)) + 1
    s3.put_object(Bucket=bucket, Key=f"{prefix}{attempt:03d}.json", Body=json.dumps(event))
    if attempt <= int(event.get("fail_attempts", 0)):
        raise RecordedFailureError(f"attempt {attempt} of {key} fails on purpose")
    return {"attempt": attempt}
