"""S3: ranged GETs that fail the way S3 sometimes does, for the fault scenarios."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stepburst_local.binding import current
from stepburst_local.moto_internals import S3Response
from stepburst_local.patching import Hook, patch

s3_range_faults = Hook(
    "s3_range_faults",
    why="Fault injection: an armed s3_range_failure fault answers a ranged GetObject with 503 "
    "SlowDown or 500 InternalError, or sends fewer bytes than its Content-Length (a body that "
    "drops mid-stream); moto always answers in full.",
    upstream="no upstream issue found (moto never fails a GET; this is fault injection)",
)

# https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
_ERRORS = {
    "SlowDown": (503, "Please reduce your request rate."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
}


@patch(s3_range_faults, S3Response, "key_response")
def _key_response(
    original: Callable[..., Any], self: Any, request: Any, full_url: str, headers: Any
) -> Any:
    status, response_headers, body = original(self, request, full_url, headers)
    bindings = current()
    ranged = request.method == "GET" and status == 206 and request.headers.get("range")
    if bindings is None or not ranged:
        return status, response_headers, body
    kind = bindings.faults.take_s3_range_failure(full_url)
    if kind is None:
        return status, response_headers, body
    if kind == "truncated":
        # Content-Length still says the whole range: the reader sees the stream end early. On
        # AWS the transport reports the short body (IncompleteRead) before any checksum is
        # checked; in-process a checksum header would be checked first, so it goes.
        kept = {
            name: value
            for name, value in response_headers.items()
            if not name.lower().startswith("x-amz-checksum")
        }
        return status, kept, body[: len(body) // 2]
    code, message = _ERRORS[kind]
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{kind}</Code><Message>{message}</Message></Error>"
    )
    return code, {"Content-Type": "application/xml"}, xml


HOOKS = (s3_range_faults,)
