"""moto's backend lookup: a service's backend for an account, without the global lock.

Every request moto answers looks its backend up (``backends[account][region]``), and moto's
``BackendDict.__getitem__`` takes the process-wide ``backend_lock`` and compares the dict with
every registered one each time, even when the account's backend exists. With a Map's children
calling Lambda and DynamoDB from many threads, that lookup was a fifth of the engine's time.
An account's backend that exists is returned at once; creating one still goes through moto.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stepburst_local.moto_internals import BackendDict
from stepburst_local.patching import Hook, patch

backend_lookup = Hook(
    "backend_lookup",
    why="moto's BackendDict.__getitem__ takes a process-wide lock and scans every registered "
    "backend dict on every request, even for an account whose backend exists (a fifth of "
    "the engine's time under a Map of Lambda children). An existing backend is returned "
    "without either; a new one is created by moto as before.",
    upstream="no upstream issue found",
)


@patch(backend_lookup, BackendDict, "_create_account_specific_backend")
def _create_account_specific_backend(
    original: Callable[..., Any], self: Any, account_id: str
) -> None:
    # Present means registered: moto's reset empties the dict and the registry together.
    if dict.__contains__(self, account_id):
        return
    original(self, account_id)


HOOKS = (backend_lookup,)
