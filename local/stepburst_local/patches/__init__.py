"""The engine's adaptations of moto (pinned at 5.2.5), one module per integration.

moto's Step Functions interpreter, Lambda, ECS, Batch, S3, EventBridge and DynamoDB get close
to AWS but not all the way. Each :class:`~stepburst_local.patching.Hook` says why it exists and
which upstream issue it covers, declares its patches (checked before any is applied, see
:mod:`stepburst_local.patching`), and has a conformance test in ``tests/local/test_hooks.py``
(``test_<hook name>``) that pins the AWS behaviour it restores.

=================== ==========================================================================
module              hooks
=================== ==========================================================================
``clients``         the interpreter's boto3 clients, cached, in-process; invocation ids
``backends``        moto's backend lookup without its global lock
``threads``         no finished interpreter thread kept
``interpreter``     parameter casing, JSONPath, definition adaptation, time, StopExecution
``lambda_``         the template's handlers run in-process
``ecs``             ecs:runTask(.sync), tasks run as processes, the capacity fault
``batch``           batch:submitJob(.sync), jobs run as processes
``distributed_map`` JSONL ItemReader, the Distributed Map run, ResultWriter, inline Map loop
``quotas``          payload size, history length
``events``          S3 -> EventBridge events, EventBridge -> Step Functions and Lambda targets
``status_events``   Step Functions execution status-change events
``executions``      nameless starts, StopExecution's reason, Map Run listings
``dynamodb``        atomic item operations, reads beside concurrent writes, partition queries
``s3``              ranged GETs read only their range, uploads decoded and stored linearly
``sdk_retries``     botocore's retry backoff and rate limiter on the engine's time_scale
=================== ==========================================================================

Hooks are installed once per process (:func:`install`) and are inert until an engine binds
itself (:func:`bind`).
"""

from __future__ import annotations

import sys
import threading

from stepburst_local import binding
from stepburst_local.moto_internals import state_manager
from stepburst_local.patches import (
    backends,
    batch,
    clients,
    distributed_map,
    dynamodb,
    ecs,
    events,
    executions,
    interpreter,
    lambda_,
    quotas,
    s3,
    sdk_retries,
    status_events,
    threads,
)
from stepburst_local.patching import Hook, apply_hooks

# Order matters where two hooks patch one target: ecs_sync wraps service_casing's normaliser,
# execution_name wraps payload_quota's start, eventbridge_lambda_target wraps
# eventbridge_states_target's delivery.
_MODULES = (
    clients,
    backends,
    threads,
    interpreter,
    lambda_,
    ecs,
    batch,
    distributed_map,
    quotas,
    events,
    status_events,
    executions,
    dynamodb,
    s3,
    sdk_retries,
)
HOOKS: dict[str, Hook] = {hook.name: hook for module in _MODULES for hook in module.HOOKS}

_lock = threading.Lock()
_installed = False
_MANUAL_MODELS = ("ecs::task", "batch::job")


def install() -> None:
    """Check every hook's targets against the installed moto, then apply them all (once per
    process); :class:`~stepburst_local.patching.PatchTargetMovedError` if any moved."""
    global _installed  # noqa: PLW0603 - once per process, like the patches themselves
    with _lock:
        if not _installed:
            apply_hooks(list(HOOKS.values()))
            _installed = True


def installed() -> bool:
    return _installed


def bind(bindings: binding.Bindings) -> None:
    """Route the compute hooks to ``bindings`` (one engine per process at a time)."""
    binding.bind(bindings)
    # Tasks and jobs change state when their process does, never on their own.
    for model in _MANUAL_MODELS:
        state_manager.set_transition(model, {"progression": "manual", "times": sys.maxsize})


def unbind(bindings: binding.Bindings) -> None:
    binding.unbind(bindings)
    if binding.current() is None:
        for model in _MANUAL_MODELS:
            state_manager.unset_transition(model)
        # The interpreter's clients belong to the engine that is going away.
        clients.forget_clients()


__all__ = ["HOOKS", "bind", "install", "installed", "unbind"]
