"""The engine the hooks serve: the compute hooks (Lambda code, containers, faults, time) ask it.

moto's backends, its mock and the process environment are process-wide, so one engine runs
per process at a time (engines may follow one another). The fixes to moto's own behaviour
(JSONPath, casing, quotas, Map semantics) apply whether an engine is bound or not.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from stepburst_local.faults import Faults

HISTORY_EVENT_LIMIT = 25_000
"""Events in one Standard execution's history; one more fails the execution, as on AWS."""
DEFAULT_MAP_WORKERS = 64
"""Threads a Distributed Map uses at most, whatever its MaxConcurrency (moto: one per item)."""


class Bindings(Protocol):
    """What the hooks need from the engine that is running."""

    time_scale: float
    map_workers: int
    history_limit: int
    faults: Faults

    def invoke_function(
        self, name: str, payload: bytes, response_headers: dict[str, str]
    ) -> bytes | None: ...

    def start_ecs_task(self, task: Any) -> bool: ...

    def start_batch_job(self, job: Any) -> bool: ...

    def track(self, execution_arn: str, kind: str, ident: tuple[str, ...]) -> None: ...

    def execution_stopped(self, execution_arn: str) -> None: ...


_lock = threading.Lock()
_bound: list[Bindings] = []


class EngineAlreadyRunningError(RuntimeError):
    """A second engine started in a process where one is running."""


def bind(bindings: Bindings) -> None:
    with _lock:
        if _bound:
            raise EngineAlreadyRunningError(
                "another local engine is already running in this process (moto's backends "
                "and the process environment are shared: stop it first)"
            )
        _bound.append(bindings)


def unbind(bindings: Bindings) -> None:
    with _lock:
        if bindings in _bound:
            _bound.remove(bindings)


def current() -> Bindings | None:
    return _bound[0] if _bound else None


def time_scale() -> float:
    bindings = current()
    return bindings.time_scale if bindings is not None else 1.0


def history_limit() -> int:
    bindings = current()
    return bindings.history_limit if bindings is not None else HISTORY_EVENT_LIMIT


def map_workers() -> int:
    bindings = current()
    return bindings.map_workers if bindings is not None else DEFAULT_MAP_WORKERS
