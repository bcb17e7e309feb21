"""The objects a process builds once, at cold start, and the one way to forget them all.

On Lambda a process serves one function of one stack, so a cache of the environment's settings
or of the job catalog lives as long as it should. A process that hosts one stack after another
(the local engine, the tests) must forget all of it between them, whichever modules built
something: a cache that only some handlers import is forgotten too (a custom resource's handler
reads the settings without building the planner). Each such cache is registered here.
"""

from __future__ import annotations

import threading
from typing import Protocol, TypeVar


class Cache(Protocol):
    def cache_clear(self) -> None: ...


CacheT = TypeVar("CacheT", bound=Cache)

_caches: list[Cache] = []
_lock = threading.Lock()


def once_per_process(cached: CacheT) -> CacheT:
    """Register a ``functools.cache`` of what a process builds once, for :func:`reset`."""
    with _lock:
        _caches.append(cached)
    return cached


def reset() -> None:
    """Forget everything built at cold start (the next call builds it from the environment)."""
    with _lock:
        caches = list(_caches)
    for cached in caches:
        cached.cache_clear()
