"""CloudFormation custom resources: answer CloudFormation whatever happens.

A custom resource that never answers holds a stack operation for an hour, so every outcome,
failure included, is sent to the pre-signed response URL; the reason names what failed.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from stepburst.observability import logger
from stepburst.statuses import CustomResourceStatus

RESPONSE_TIMEOUT_SECONDS = 30
_REASON_LIMIT = 3500


def send_response(
    event: Mapping[str, Any],
    *,
    succeeded: bool,
    physical_id: str,
    reason: str = "",
    data: Mapping[str, Any] | None = None,
) -> None:
    body = json.dumps(
        {
            "Status": CustomResourceStatus.SUCCESS if succeeded else CustomResourceStatus.FAILED,
            "Reason": reason[:_REASON_LIMIT] or "see the function's logs",
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": dict(data or {}),
        }
    ).encode("utf-8")
    request = urllib.request.Request(
        str(event["ResponseURL"]),
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=RESPONSE_TIMEOUT_SECONDS) as response:
        response.read()


def respond(
    event: Mapping[str, Any],
    physical_id: str,
    work: Callable[[], Mapping[str, Any]],
) -> dict[str, Any]:
    """Run ``work`` and report its outcome to CloudFormation; return what was reported."""
    try:
        data = dict(work())
    except Exception as error:  # reported to CloudFormation, which fails the deploy with it
        logger.exception("custom resource failed")
        reason = f"{type(error).__name__}: {error}"
        send_response(event, succeeded=False, physical_id=physical_id, reason=reason)
        return {"Status": CustomResourceStatus.FAILED, "Reason": reason}
    send_response(event, succeeded=True, physical_id=physical_id, data=data)
    return {"Status": CustomResourceStatus.SUCCESS, "Data": data}
