"""Lambda: the template's real handlers run, and answer like the Lambda service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stepburst_local.binding import current
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


HOOKS = (lambda_invoke,)
