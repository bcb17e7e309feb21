"""botocore failures to domain errors, shared by every adapter.

A code every service uses the same way (throttling, access denied) gets its class here; each
adapter names the codes of its own service that mean something to the product.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from stepburst.aws import error_code
from stepburst.errors import (
    AccessDeniedError,
    AwsError,
    AwsUnavailableError,
    ConnectionDroppedError,
    ThrottledError,
)

# Raised before any request reached AWS: the caller's setup is at fault, not the request.
UNREACHABLE: tuple[type[Exception], ...] = (
    NoCredentialsError,
    PartialCredentialsError,
    NoRegionError,
    EndpointConnectionError,
    ConnectTimeoutError,
)
# The connection dropped mid-request, after botocore's own retries: AWS is there, but the
# request may be tried again later.
DROPPED: tuple[type[Exception], ...] = (ConnectionClosedError, ReadTimeoutError)
# Every botocore failure an adapter translates.
FAILURES: tuple[type[Exception], ...] = (ClientError, *UNREACHABLE, *DROPPED)
# botocore's own throttling codes (botocore.retries.standard), less LimitExceededException,
# which Step Functions, CloudFormation and Scheduler use for quotas that waiting does not lift.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestThrottled",
        "SlowDown",
    }
)
# A missing permission, or credentials AWS does not accept (expired, unknown, badly signed).
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
    }
)

ErrorFactory = Callable[..., AwsError]
# AWS error code -> the domain error class for it, for one service or one call.
Codes = Mapping[str, ErrorFactory]


def domain_error(error: Exception, doing: str, codes: Codes | None = None) -> Exception:
    """The domain error for ``error``, raised while ``doing`` (e.g. "starting execution X").

    ``error`` is a ``ClientError``, or one of :data:`UNREACHABLE` or :data:`DROPPED`; anything
    else is returned unchanged, so a caller never hides a bug behind a domain error.
    """
    if isinstance(error, UNREACHABLE):
        return AwsUnavailableError(f"{doing}: AWS cannot be reached: {error}")
    if isinstance(error, DROPPED):
        return ConnectionDroppedError(f"{doing}: the connection to AWS dropped: {error}")
    if not isinstance(error, ClientError):
        return error
    code = error_code(error)
    detail = str(error.response.get("Error", {}).get("Message") or "")
    message = f"{doing}: {code}" + (f": {detail}" if detail else "")
    specific = (codes or {}).get(code)
    if specific is not None:
        return specific(message, code=code)
    if code in THROTTLING_CODES:
        return ThrottledError(message, code=code)
    if code in ACCESS_DENIED_CODES:
        return AccessDeniedError(message, code=code)
    return AwsError(message, code=code)


@contextmanager
def translated(doing: str, codes: Codes | None = None) -> Iterator[None]:
    """Raise the domain error of any AWS failure in the block, ``from`` the original.

    Iterate paginators inside the block: their requests are made as they are iterated.
    """
    try:
        yield
    except FAILURES as error:
        raise domain_error(error, doing, codes) from error
