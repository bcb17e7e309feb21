"""Step Functions' quotas: state payload size and execution history length."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from stepburst_local.binding import history_limit
from stepburst_local.moto_internals import (
    Environment,
    EventManager,
    ExecutionFailedEventDetails,
    ExecutionWorker,
    ProgramStopped,
    StepFunctionsParserBackend,
    ValidationException,
    quotas,
)
from stepburst_local.patching import Hook, patch, patch_value

# https://docs.aws.amazon.com/step-functions/latest/dg/limits-overview.html
PAYLOAD_LIMIT_BYTES = 256 * 1024
"""State input/output limit (UTF-8 bytes); above it a state fails with States.DataLimitExceeded."""

payload_quota = Hook(
    "payload_quota",
    why="AWS allows state input/output up to 256 KiB inclusive and fails larger ones with "
    "States.DataLimitExceeded (moto fails at exactly 256 KiB too); StartExecution rejects "
    "an input over 256 KiB (moto takes any size).",
    upstream="no upstream issue found",
)

# moto tests ``size < MAX_STATE_SIZE_UTF8_BYTES``; the quota includes 256 KiB itself.
patch_value(
    payload_quota,
    quotas,
    "MAX_STATE_SIZE_UTF8_BYTES",
    PAYLOAD_LIMIT_BYTES + 1,
    was=PAYLOAD_LIMIT_BYTES,
)


@patch(payload_quota, StepFunctionsParserBackend, "start_execution")
def _start_execution(  # noqa: PLR0917 - moto's signature
    original: Callable[..., Any],
    self: Any,
    state_machine_arn: str,
    name: Any = None,
    execution_input: Any = None,
    trace_header: Any = None,
) -> Any:
    if execution_input is not None and len(execution_input) > PAYLOAD_LIMIT_BYTES:
        raise ValidationException(
            "1 validation error detected: Value at 'input' failed to satisfy constraint: "
            f"Member must have length less than or equal to {PAYLOAD_LIMIT_BYTES}"
        )
    return original(self, state_machine_arn, name, execution_input, trace_header)


history_quota = Hook(
    "history_quota",
    why="A Standard execution fails once its history reaches 25,000 events on AWS; moto's "
    "history grows without bound (and every Distributed Map child counts on its own). An "
    "aborted execution also stays ABORTED (moto lets a later state error turn it FAILED).",
    upstream="no upstream issue found",
)

_counted: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
"""Each counted history (an EventManager) and the environment whose execution it records."""
_ended_by_quota: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
"""Environments the quota failed, with the reason (later errors do not replace it)."""


def count_history(env: Any, event_manager: Any = None) -> None:
    """Give ``env`` a history of its own (``event_manager``, or the one it has) that fails
    its execution at the engine's history limit."""
    if event_manager is not None:
        env.event_manager = event_manager
    _counted[env.event_manager] = env


def new_history() -> Any:
    """An empty execution history (for a Distributed Map child, an execution of its own)."""
    return EventManager()


@patch(history_quota, ExecutionWorker, "_get_evaluation_environment")
def _evaluation_environment(original: Callable[[Any], Any], self: Any) -> Any:
    env = original(self)
    count_history(env)
    return env


@patch(history_quota, EventManager, "add_event")
def _add_event(  # noqa: PLR0917 - moto's signature
    original: Callable[..., int],
    self: Any,
    context: Any,
    event_type: Any,
    event_details: Any = None,
    timestamp: Any = None,
    update_source_event_id: bool = True,
) -> int:
    event_id = original(self, context, event_type, event_details, timestamp, update_source_event_id)
    root = _counted.get(self)
    if root is not None and root not in _ended_by_quota:
        limit = history_limit()
        if event_id >= limit:
            details = ExecutionFailedEventDetails(
                error="States.Runtime",
                cause=f"The execution reached the maximum number of history events ({limit}).",
            )
            _ended_by_quota[root] = details
            root.set_error(details)
    return event_id


@patch(history_quota, Environment, "set_error")
def _set_error(original: Callable[[Any, Any], None], self: Any, error: Any) -> None:
    # An aborted execution stays aborted; one the quota ended keeps the quota as its reason.
    if isinstance(self._program_state, ProgramStopped):
        return
    original(self, _ended_by_quota.get(self) or error)


HOOKS = (payload_quota, history_quota)
