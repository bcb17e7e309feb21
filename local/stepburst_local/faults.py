"""Fault injection: make the in-memory AWS answer the way AWS does when it is having a bad day.

Scenario tests arm a fault, run the real state machine, and assert on what the retries saw::

    engine.faults.lambda_throttle("ProcessItemsFunction", times=1)
    engine.faults.ecs_capacity(reason="RESOURCE:MEMORY", times=2)

Each fault fires ``times`` times and then disarms itself. The hooks in
:mod:`stepburst_local.patches` (and the Lambda runtime they call) consult this object.
"""

from __future__ import annotations

import threading
from collections import Counter


class Faults:
    """Armed faults, consumed by the moto hooks. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lambda_throttles: Counter[str] = Counter()
        self._ecs_capacity: list[str] = []
        self._ecs_spot_interruptions = 0
        self.fired: Counter[str] = Counter()
        """How many times each kind of fault fired (``lambda_throttle``, ``ecs_capacity``)."""

    def lambda_throttle(self, function: str, *, times: int = 1) -> None:
        """The next ``times`` invocations of ``function`` (logical id or function name) are
        rejected by the Lambda service with ``TooManyRequestsException`` (HTTP 429), which a
        ``lambda:invoke`` task reports as ``Lambda.TooManyRequestsException``."""
        with self._lock:
            self._lambda_throttles[function] += times

    def ecs_capacity(self, *, reason: str = "RESOURCE:MEMORY", times: int = 1) -> None:
        """The next ``times`` ECS ``RunTask`` calls place no task and answer HTTP 200 with
        ``failures: [{reason}]``; ``ecs:runTask.sync`` fails those with ``AmazonECS.Unknown``."""
        with self._lock:
            self._ecs_capacity.extend([reason] * times)

    def ecs_spot_interruption(self, *, times: int = 1) -> None:
        """The next ``times`` ECS tasks are placed, then reclaimed by Fargate Spot before their
        container starts: the task stops with ``StopCode`` ``SpotInterruption`` and no exit
        code, as AWS reports it ("Amazon ECS stopped task error codes")."""
        with self._lock:
            self._ecs_spot_interruptions += times

    def clear(self) -> None:
        with self._lock:
            self._lambda_throttles.clear()
            self._ecs_capacity.clear()
            self._ecs_spot_interruptions = 0

    def take_lambda_throttle(self, *names: str) -> bool:
        with self._lock:
            for name in names:
                if self._lambda_throttles[name] > 0:
                    self._lambda_throttles[name] -= 1
                    self.fired["lambda_throttle"] += 1
                    return True
            return False

    def take_ecs_spot_interruption(self) -> bool:
        with self._lock:
            if self._ecs_spot_interruptions <= 0:
                return False
            self._ecs_spot_interruptions -= 1
            self.fired["ecs_spot_interruption"] += 1
            return True

    def take_ecs_capacity(self) -> str | None:
        with self._lock:
            if not self._ecs_capacity:
                return None
            self.fired["ecs_capacity"] += 1
            return self._ecs_capacity.pop(0)
