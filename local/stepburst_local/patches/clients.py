"""The clients the interpreter calls services with: one per region and service, in-process.

moto's ``boto_client_for`` builds a new boto3 client for every task, and that client follows
boto3's ``AWS_ENDPOINT_URL``. The functions' environment sets that variable (so that the
processes a function starts reach the local AWS), and the in-process handlers set it in this
process's environment: from the first invocation on, every interpreter call went through the
engine's HTTP server, one new connection per call (werkzeug closes each connection after one
answer), with no retry (moto builds the interpreter's clients with ``max_attempts: 0``). Under
load a call then died with ``Connection was closed before we received a valid response``,
failing its state with ``States.Runtime``. On AWS Step Functions calls services on its own
side. The engine's interpreter clients are cached and, while moto's mock is on, ignore the
configured endpoint: their calls reach moto's backends in this process, as the engine's own
calls do.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import boto3
from botocore import endpoint as botocore_endpoint
from botocore import loaders as botocore_loaders
from botocore.config import Config

from stepburst_local import ids
from stepburst_local.moto_internals import (
    BOTO_CLIENT_FOR_IMPORTERS,
    boto_client,
    botocore_stubber,
    moto_server_port,
)
from stepburst_local.patching import Hook, patch, patch_value

client_cache = Hook(
    "client_cache",
    why="moto builds a new boto3 client for every task (~3-12 ms); AWS has no such cost. The "
    "interpreter's clients are cached per region, service and endpoint, and while moto's mock "
    "is on they ignore AWS_ENDPOINT_URL (which the in-process handlers set): their calls stay "
    "in this process instead of crossing the HTTP server without retries.",
    upstream="no upstream issue found",
)

# moto's own settings for the interpreter's clients: the state's Retry decides, not botocore.
_IN_PROCESS_CONFIG = Config(
    parameter_validation=False,
    retries={"max_attempts": 0, "total_max_attempts": 1},
    ignore_configured_endpoint_urls=True,  # type: ignore[call-arg]  # botocore 1.31+, not in the stubs
    max_pool_connections=64,
)

_lock = threading.Lock()
_clients: dict[tuple[str, str, str | None], Any] = {}


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


def _in_process_client(region: str, service: str) -> Any:
    # The stubs type Session.client by literal service name; the name here is the state's.
    session: Any = boto3.session.Session()
    return session.client(
        service,
        region_name=region,
        aws_access_key_id="ak",
        aws_secret_access_key="sk",
        config=_IN_PROCESS_CONFIG,
    )


@patch(client_cache, boto_client, "boto_client_for", also_bound_in=BOTO_CLIENT_FOR_IMPORTERS)
def boto_client_for(
    original: Callable[..., Any], region: str, service: str, state_credentials: Any = None
) -> Any:
    in_process = bool(botocore_stubber.enabled)
    endpoint = None if in_process else f"http://localhost:{moto_server_port()}"
    key = (region, service, endpoint)
    cached = _clients.get(key)
    if cached is None:
        with _lock:
            cached = _clients.get(key)
            if cached is None:
                if in_process:
                    cached = _in_process_client(region, service)
                else:
                    cached = original(region=region, service=service)
                _clients[key] = cached
    return cached


invocation_ids = Hook(
    "invocation_ids",
    why="botocore gives every call an invocation id from uuid.uuid4, which reads "
    "os.urandom and so releases the GIL: with a Map's children calling services from many "
    "threads, taking it back cost up to a thread switch interval per call. The engine's "
    "process draws those ids (which name, never guard) from a seeded generator instead.",
    upstream="no upstream issue found",
)
patch_value(invocation_ids, botocore_endpoint, "uuid", ids.UuidModule, was=uuid)


models_shared = Hook(
    "models_shared",
    why="botocore reads and parses its JSON models (endpoints.json, each service's model) "
    "once per session, and every client the product, the custom resources' replies and "
    "the interpreter build comes from a new session: one demo parsed endpoints.json 22 "
    "times and the EC2 model 7 times, a quarter of the engine's start. The files do not "
    "change while the process runs: every loader with the same search paths shares what "
    "one of them parsed (botocore already shares it between the clients of one session).",
    upstream="no upstream issue found",
)

_models_lock = threading.Lock()
_models: dict[tuple[Any, ...], Any] = {}


def _shared(original: Callable[..., Any], loader: Any, args: Any, kwargs: Any, name: str) -> Any:
    key = (
        name,
        type(loader.file_loader),
        tuple(loader.search_paths),
        tuple(loader.extras_types),
        args,
        tuple(sorted(kwargs.items())),
    )
    found = _models.get(key)
    if found is None:
        found = original(loader, *args, **kwargs)  # raises (and caches nothing) if absent
        with _models_lock:
            found = _models.setdefault(key, found)
    return found


@patch(models_shared, botocore_loaders.Loader, "load_service_model")
def _load_service_model(original: Callable[..., Any], self: Any, *args: Any, **kwargs: Any) -> Any:
    # A model with its extras merged in (botocore merges them into what load_data returned).
    return _shared(original, self, args, kwargs, "load_service_model")


@patch(models_shared, botocore_loaders.Loader, "load_data_with_path")
def _load_data_with_path(original: Callable[..., Any], self: Any, *args: Any, **kwargs: Any) -> Any:
    return _shared(original, self, args, kwargs, "load_data_with_path")


HOOKS = (client_cache, invocation_ids, models_shared)
