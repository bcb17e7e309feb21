"""The clients the interpreter calls services with: one per region, service and endpoint."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from stepburst_local.moto_internals import (
    BOTO_CLIENT_FOR_IMPORTERS,
    boto_client,
    botocore_stubber,
    moto_server_port,
)
from stepburst_local.patching import Hook, patch

client_cache = Hook(
    "client_cache",
    why="moto builds a new boto3 client for every task (~3-12 ms); AWS has no such cost. The "
    "interpreter's clients are cached per region, service and endpoint.",
    upstream="no upstream issue found",
)

_lock = threading.Lock()
_clients: dict[tuple[str, str, str | None, str | None], Any] = {}


def client(region: str, service: str) -> Any:
    """The interpreter's client for ``service`` in ``region``, as its tasks get it."""
    return boto_client.boto_client_for(region=region, service=service)


def cached_clients() -> list[tuple[str, str]]:
    """(region, service) of each cached client."""
    return [(key[0], key[1]) for key in _clients]


def forget_clients() -> None:
    """Drop the cached clients (they belong to the engine that is stopping)."""
    with _lock:
        _clients.clear()


@patch(client_cache, boto_client, "boto_client_for", also_bound_in=BOTO_CLIENT_FOR_IMPORTERS)
def boto_client_for(
    original: Callable[..., Any], region: str, service: str, state_credentials: Any = None
) -> Any:
    endpoint = None if botocore_stubber.enabled else f"http://localhost:{moto_server_port()}"
    # boto3 also honours AWS_ENDPOINT_URL, which functions' environments set: a client built
    # under one engine's endpoint must not serve the next engine.
    key = (region, service, endpoint, os.environ.get("AWS_ENDPOINT_URL"))
    cached = _clients.get(key)
    if cached is None:
        with _lock:
            cached = _clients.get(key)
            if cached is None:
                cached = original(region=region, service=service)
                _clients[key] = cached
    return cached


HOOKS = (client_cache,)
