"""Lambda: the template's real handlers run, and answer like the Lambda service."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from stepburst_local.binding import Bindings, current, time_scale
from stepburst_local.compute import LambdaThrottledError
from stepburst_local.moto_internals import (
    JsonRESTError,
    LambdaSimpleBackend,
    StateTaskServiceLambda,
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


HOOKS = (lambda_invoke,)
