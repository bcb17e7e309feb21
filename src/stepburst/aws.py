"""The one way stepburst builds AWS clients.

Every client comes from :func:`client`, which applies the same retry configuration and caches
the client per service and endpoint: building a boto3 client costs ~10 ms, which matters on a
Lambda cold start and on every local-engine task. The endpoint comes from boto3's standard
``AWS_ENDPOINT_URL`` variable, which is how the local engine and ``stepburst local up`` point
the same code at the in-memory AWS.

Only the adapters (``stepburst.adapters``, ``stepburst.storage``) call :func:`client`; its
overloads give each service's client its type from the boto3 stubs, a development-only
dependency that is never imported at run time.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from botocore.exceptions import NoRegionError, ProfileNotFound

from stepburst.errors import AwsUnavailableError

if TYPE_CHECKING:
    from types_boto3_batch import BatchClient
    from types_boto3_cloudformation import CloudFormationClient
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_ec2 import EC2Client
    from types_boto3_ecs import ECSClient
    from types_boto3_events import EventBridgeClient
    from types_boto3_glue import GlueClient
    from types_boto3_iam import IAMClient
    from types_boto3_logs import CloudWatchLogsClient
    from types_boto3_s3 import S3Client
    from types_boto3_scheduler import EventBridgeSchedulerClient
    from types_boto3_secretsmanager import SecretsManagerClient
    from types_boto3_ssm import SSMClient
    from types_boto3_stepfunctions import SFNClient
    from types_boto3_sts import STSClient

_RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 10},
    connect_timeout=10,
    read_timeout=120,
    max_pool_connections=32,
    # Over HTTPS, with a checksum of the body in a header (every upload of stepburst.storage),
    # botocore would still SHA-256 the whole body to sign it: a pass over every byte uploaded,
    # worth as much CPU as the TLS itself. S3 accepts UNSIGNED-PAYLOAD and checks the body
    # against its checksum: https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
    # (ignored by every other service's client).
    s3={"payload_signing_enabled": False},
)

_lock = threading.Lock()
_clients: dict[tuple[str, str | None, str | None], Any] = {}


@overload
def client(service: Literal["batch"]) -> BatchClient: ...
@overload
def client(service: Literal["cloudformation"]) -> CloudFormationClient: ...
@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["ec2"]) -> EC2Client: ...
@overload
def client(service: Literal["ecs"]) -> ECSClient: ...
@overload
def client(service: Literal["events"]) -> EventBridgeClient: ...
@overload
def client(service: Literal["glue"]) -> GlueClient: ...
@overload
def client(service: Literal["logs"]) -> CloudWatchLogsClient: ...
@overload
def client(service: Literal["iam"]) -> IAMClient: ...
@overload
def client(service: Literal["s3"]) -> S3Client: ...
@overload
def client(service: Literal["scheduler"]) -> EventBridgeSchedulerClient: ...
@overload
def client(service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
@overload
def client(service: Literal["stepfunctions"]) -> SFNClient: ...
@overload
def client(service: Literal["ssm"]) -> SSMClient: ...
@overload
def client(service: Literal["sts"]) -> STSClient: ...
def client(service: str) -> Any:
    """A cached, retrying boto3 client for ``service`` in the current region and endpoint.

    Raises :class:`~stepburst.errors.AwsUnavailableError` when no client can be built (no
    region, an unknown profile).
    """
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    key = (service, endpoint, region)
    cached = _clients.get(key)
    if cached is not None:
        return cached
    with _lock:
        cached = _clients.get(key)
        if cached is None:
            cached = _build(service, region)
            _clients[key] = cached
        return cached


def _build(service: str, region: str | None) -> Any:
    try:
        # The stubs type Session.client by literal service name; the overloads above do that.
        session: Any = boto3.session.Session()
        return session.client(service, region_name=region, config=_RETRY_CONFIG)
    except (NoRegionError, ProfileNotFound) as error:
        raise AwsUnavailableError(f"no AWS client for {service}: {error}") from error


def reset_clients() -> None:
    """Forget cached clients (after the endpoint or credentials change, e.g. in tests)."""
    with _lock:
        _clients.clear()


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore ``ClientError``, or '' for anything else."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))
