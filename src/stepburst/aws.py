"""The one way stepburst builds AWS clients.

Every client comes from :func:`client`, which applies the same retry configuration and caches
the client per service and endpoint: building a boto3 client costs ~10 ms, which matters on a
Lambda cold start and on every local-engine task. The endpoint comes from boto3's standard
``AWS_ENDPOINT_URL`` variable, which is how the local engine and ``stepburst local up`` point
the same code at the in-memory AWS.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

_RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 10},
    connect_timeout=10,
    read_timeout=120,
    max_pool_connections=32,
)

_lock = threading.Lock()
_clients: dict[tuple[str, str | None, str | None], Any] = {}


def client(service: str) -> Any:
    """A cached, retrying boto3 client for ``service`` in the current region and endpoint."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    key = (service, endpoint, region)
    cached = _clients.get(key)
    if cached is not None:
        return cached
    with _lock:
        cached = _clients.get(key)
        if cached is None:
            cached = boto3.session.Session().client(
                service, region_name=region, config=_RETRY_CONFIG
            )
            _clients[key] = cached
        return cached


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
