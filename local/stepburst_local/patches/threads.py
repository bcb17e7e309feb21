"""The interpreter's threads: none kept after they end.

moto's interpreter runs every execution's program, and every Task and Map state, in a thread
of its own, and appends each to a module-level list (``TMP_THREADS``, LocalStack's list for
joining threads in its tests) that nothing reads or empties: a 100,000-item run kept 200,000
threads, and with them every state's frame, alive to the end of the process.
"""

from __future__ import annotations

from typing import Any

from stepburst_local.moto_internals import TMP_THREADS_IMPORTERS
from stepburst_local.patching import Hook, patch_value

interpreter_threads_released = Hook(
    "interpreter_threads_released",
    why="moto's interpreter appends every thread it starts to parser.utils.TMP_THREADS, "
    "which nothing reads or empties: every Map child's threads, and the frames they hold, "
    "stay alive until the process ends. The list keeps nothing here.",
    upstream="no upstream issue found",
)


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


HOOKS = (interpreter_threads_released,)
