"""Lambda: the template's real handlers run, and answer like the Lambda service."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from stepburst_local import ids
from stepburst_local.binding import Bindings, current, time_scale
from stepburst_local.compute import LambdaThrottledError
from stepburst_local.moto_internals import (
    JsonRESTError,
    LambdaSimpleBackend,
    StateTaskServiceLambda,
    lambda_eval_utils,
)
from stepburst_local.patches.failures import LAMBDA_ERRORS
from stepburst_local.patching import Hook, patch

lambda_invoke = Hook(
    "lambda_invoke",
    why="moto's Lambda without Docker echoes the payload. The engine runs the real handler "
    "named by the template in-process and answers like the Lambda service (payload, "
    "x-amz-function-error: Unhandled with errorType, 429 TooManyRequestsException), and a "
    "lambda:invoke task names service errors after the SDK exception "
    "(Lambda.AWSLambdaException for unmodeled codes).",
    upstream="no upstream issue found (echoing without Docker is moto's documented behaviour)",
)


class _TooManyRequestsError(JsonRESTError):
    code = 429

    def __init__(self) -> None:
        super().__init__("TooManyRequestsException", "Rate Exceeded.")


@patch(lambda_invoke, LambdaSimpleBackend, "invoke")
def invoke(  # noqa: PLR0917 - moto's signature
    original: Callable[..., Any],
    self: Any,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: dict[str, str],
) -> Any:
    bindings = current()
    if bindings is not None:
        payload = body.encode() if isinstance(body, str) else (body or b"{}")
        try:
            result = bindings.invoke_function(function_name, payload, response_headers)
        except LambdaThrottledError:
            raise _TooManyRequestsError() from None
        if result is not None:
            return result
    return original(self, function_name, qualifier, body, headers, response_headers)


@patch(lambda_invoke, StateTaskServiceLambda, "_error_cause_from_client_error")
def error_cause_from_client_error(
    original: Callable[..., tuple[str, str]], client_error: Any
) -> tuple[str, str]:
    _, cause = original(client_error)
    return LAMBDA_ERRORS.error_name(client_error.response["Error"]["Code"]), cause


# -- the interpreter's lambda:invoke, in-process -----------------------------------------------

lambda_invoke_direct = Hook(
    "lambda_invoke_direct",
    why="A lambda:invoke task of a function the engine runs went through a boto3 client and "
    "moto's emulation of the Lambda API (signing, request, routing, response, parsing): "
    "about 1.5 ms of CPU per task, more than the rest of a Map child. The interpreter asks "
    "the engine's Lambda runtime directly and gets the response botocore would have parsed "
    "from moto's (StatusCode, FunctionError, Payload; the same 429 ClientError when "
    "throttled); functions the engine does not run still go through the client.",
    upstream="no upstream issue found",
)

RESPONSE_SIZE_LIMIT = 6_000_000
"""moto's Lambda API answers a larger payload (by ``sys.getsizeof``) with
Function.ResponseSizeTooLarge (moto.awslambda.responses.LambdaResponse.invoke)."""


@patch(lambda_invoke_direct, lambda_eval_utils, "_invoke_lambda_function")
def _invoke_lambda_function(
    original: Callable[..., dict[str, Any]],
    parameters: dict[str, Any],
    region: str,
    state_credentials: Any,
) -> dict[str, Any]:
    bindings = current()
    if bindings is None:
        return original(parameters, region, state_credentials)
    # botocore sends Payload as the body; moto's Lambda API passes it on as received.
    payload = parameters.get("Payload") or b""
    if isinstance(payload, str):
        payload = payload.encode()
    headers: dict[str, str] = {}
    try:
        result = bindings.invoke_function(str(parameters["FunctionName"]), payload, headers)
    except LambdaThrottledError:
        raise _throttled() from None
    if result is None:  # not one of the engine's functions: moto answers
        return original(parameters, region, state_credentials)
    if sys.getsizeof(result) > RESPONSE_SIZE_LIMIT:
        headers["x-amz-function-error"] = "Unhandled"
        result = _RESPONSE_TOO_LARGE
    # What botocore parses from a 200 answer (Invoke's output shape, headers and body).
    response: dict[str, Any] = {"StatusCode": 200}
    if "x-amz-function-error" in headers:
        response["FunctionError"] = headers["x-amz-function-error"]
    response["Payload"] = lambda_eval_utils._from_payload(io.BytesIO(result))
    return response


_RESPONSE_TOO_LARGE = json.dumps(
    {
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        "(6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }
).encode()


def _throttled() -> ClientError:
    """The ClientError botocore raises for moto's 429 (the interpreter's clients never retry)."""
    request_id = ids.uuid4().hex + ids.uuid4().hex[:20]
    response: Any = {
        "Error": {"Message": "Rate Exceeded.", "Code": "TooManyRequestsException"},
        "ResponseMetadata": {
            "RequestId": request_id,
            "HTTPStatusCode": 429,
            "HTTPHeaders": {
                "x-amzn-errortype": "TooManyRequestsException",
                "content-type": "application/json",
                "status": "429",
                "x-amzn-requestid": request_id,
            },
            "RetryAttempts": 0,
        },
        "message": "Rate Exceeded.",
    }
    return ClientError(response, "Invoke")


# -- asynchronous invocation -------------------------------------------------------------------

LOG = logging.getLogger(__name__)

ASYNC_RETRY_DELAYS_SECONDS = (60.0, 120.0)
"""An asynchronous invocation whose function fails is run twice more, one then two minutes
later (scaled by the engine's time_scale):
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html"""


def invoke_asynchronously(function: str, payload: bytes) -> bool:
    """Queue an ``Event`` invocation of ``function`` (name or ARN), as the Lambda service does
    for EventBridge: the caller never waits for the handler and never sees its errors.

    The handler runs on the engine's Lambda runtime, the one ``lambda:invoke`` tasks reach.
    False if no engine is running.
    """
    bindings = current()
    if bindings is None:
        return False
    threading.Thread(
        target=_run_asynchronously,
        args=(bindings, function, payload),
        name=f"lambda-event-{function.rsplit(':', 1)[-1]}",
        daemon=True,
    ).start()
    return True


def _run_asynchronously(bindings: Bindings, function: str, payload: bytes) -> None:
    for attempt, delay in enumerate((0.0, *ASYNC_RETRY_DELAYS_SECONDS), start=1):
        if delay:
            time.sleep(delay * time_scale())
        if current() is not bindings:
            return  # the engine that queued it has stopped
        headers: dict[str, str] = {}
        try:
            result = bindings.invoke_function(function, payload, headers)
        except LambdaThrottledError:
            LOG.warning("asynchronous invocation of %s throttled (attempt %d)", function, attempt)
            continue
        if result is None:
            LOG.warning("asynchronous invocation of %s: no such function", function)
            return
        if "x-amz-function-error" not in headers:
            return
        LOG.warning(
            "asynchronous invocation of %s failed (attempt %d): %s",
            function,
            attempt,
            result[:500].decode(errors="replace"),
        )
    LOG.error("asynchronous invocation of %s dropped after its retries", function)


HOOKS = (lambda_invoke, lambda_invoke_direct)
