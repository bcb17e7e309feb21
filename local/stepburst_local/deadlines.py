"""Function timeouts for handlers that run in the invoking thread.

A handler runs in the thread that invoked it (a new thread per invocation cost the engine
several milliseconds a call under load: starting and joining it hands the GIL between threads
twice). One watchdog thread holds every running invocation's deadline and, at a deadline,
raises :class:`LambdaTimeout` in the invoking thread, at its next Python instruction (the
sandbox is gone on AWS). A handler blocked in one long call into C (a single ``time.sleep``)
is stopped when that call returns.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class LambdaTimeout(BaseException):
    """Raised inside a handler that outlived its function's timeout."""


def _raise_in(ident: int, exception: type[BaseException] | None) -> None:
    # With None, clears an exception set and not yet raised.
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exception) if exception else None
    )


class Watchdog:
    """Interrupts the threads whose deadline passed, while they are watched."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._deadlines: list[tuple[float, int]] = []
        self._watched: dict[int, int] = {}  # token -> thread ident
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, deadline: float) -> Iterator[list[bool]]:
        """Watch the current thread until ``deadline`` (``time.monotonic``) while the block
        runs. Yields a one-element list that says, after the block, whether the deadline
        interrupted it (its :class:`LambdaTimeout` is raised in the block, or cleared if it
        was not raised yet)."""
        token = next(self._tokens)
        fired = [False]
        with self._condition:
            self._watched[token] = threading.get_ident()
            heapq.heappush(self._deadlines, (deadline, token))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lambda-deadlines", daemon=True
                )
                self._thread.start()
            elif self._deadlines[0][1] == token:
                self._condition.notify()
        try:
            yield fired
        finally:
            with self._condition:
                if self._watched.pop(token, None) is None:
                    fired[0] = True
                    _raise_in(threading.get_ident(), None)

    def _run(self) -> None:
        with self._condition:
            while True:
                while self._deadlines and self._deadlines[0][1] not in self._watched:
                    heapq.heappop(self._deadlines)
                if not self._deadlines:
                    self._condition.wait()
                    continue
                deadline, token = self._deadlines[0]
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._condition.wait(remaining)
                    continue
                heapq.heappop(self._deadlines)
                _raise_in(self._watched.pop(token), LambdaTimeout)


WATCHDOG = Watchdog()
"""The process's watchdog (one thread, started at the first watched invocation)."""
