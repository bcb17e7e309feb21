"""The interpreter's threads: none for a timeout nobody set, none kept after they end.

moto's interpreter runs every execution's program, and every Task and Map state, in a thread
of its own so that it can stop waiting at the state's ``TimeoutSeconds``; each Distributed Map
child is such a program with a Task inside, so a Lambda child started and joined two threads
besides the Map's own. Under load each start and each join waits for the GIL to be handed
over, about a millisecond or more each. Where no timeout was set (the program has no
``TimeoutSeconds``; the state has moto's default, 99,999,999 s), there is nothing to stop
waiting for, and the work runs in the calling thread.

moto also appends every such thread to a module-level list (``TMP_THREADS``, LocalStack's
list for joining threads in its tests) that nothing reads or empties: a 100,000-item run kept
200,000 threads, and with them every state's frame, alive to the end of the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from stepburst_local.moto_internals import (
    TMP_THREADS_IMPORTERS,
    ExecutionState,
    Program,
    TimeoutSeconds,
    execute_state,
)
from stepburst_local.patching import Hook, patch, patch_value

untimed_states_inline = Hook(
    "untimed_states_inline",
    why="moto's interpreter starts and joins a thread for every program and every Task or "
    "Map state, to stop waiting at its TimeoutSeconds, even when none was set; under a "
    "Map's load each start and join waits for the GIL. A program without TimeoutSeconds and "
    "a state with moto's default (99,999,999 s) run in the calling thread; one with a "
    "timeout keeps its thread.",
    upstream="no upstream issue found",
)

interpreter_threads_released = Hook(
    "interpreter_threads_released",
    why="moto's interpreter appends every thread it starts to parser.utils.TMP_THREADS, "
    "which nothing reads or empties: every Map child's threads, and the frames they hold, "
    "stay alive until the process ends. The list keeps nothing here.",
    upstream="no upstream issue found",
)

_UNTIMED = TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS
_inline = threading.local()


class _NothingKept(list[Any]):
    """A list that does not keep what is appended to it."""

    def append(self, item: Any) -> None:
        pass


_NOT_KEPT = _NothingKept()
_MOTO_TMP_THREADS = TMP_THREADS_IMPORTERS[0].TMP_THREADS
for _module in TMP_THREADS_IMPORTERS:
    patch_value(
        interpreter_threads_released, _module, "TMP_THREADS", _NOT_KEPT, was=_MOTO_TMP_THREADS
    )


class _StateThread(threading.Thread):
    """moto's thread for one state, run in the starting thread when the state asked for it."""

    _ran_inline = False

    def start(self) -> None:
        if getattr(_inline, "next_state", False):
            _inline.next_state = False  # this state only, not the states it runs
            self._ran_inline = True
            self.run()
        else:
            super().start()

    def join(self, timeout: float | None = None) -> None:
        if not self._ran_inline:
            super().join(timeout)

    def is_alive(self) -> bool:
        return False if self._ran_inline else super().is_alive()


patch_value(untimed_states_inline, execute_state, "Thread", _StateThread, was=threading.Thread)


@patch(untimed_states_inline, ExecutionState, "_evaluate_with_timeout")
def _evaluate_with_timeout(original: Callable[..., Any], self: Any, env: Any) -> Any:
    untimed = getattr(self.timeout, "timeout_seconds", None) == _UNTIMED
    _inline.next_state = untimed
    try:
        return original(self, env)
    finally:
        _inline.next_state = False


@patch(untimed_states_inline, Program, "eval")
def _program_eval(original: Callable[..., Any], self: Any, env: Any) -> Any:
    if self.timeout_seconds is not None:
        return original(self, env)
    # What moto's Program.eval runs in its worker thread (and, without a timeout, waits for).
    env.next_state_name = self.start_at.start_at_name
    return super(Program, self).eval(env)


HOOKS = (untimed_states_inline, interpreter_threads_released)
