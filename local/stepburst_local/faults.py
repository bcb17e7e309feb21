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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# A condition a running fault waits for (e.g. "the unit's first item is SUCCEEDED").
Condition = Callable[[], bool]


class Reclaim:
    """A fault assigned to one running task, job or invocation: it fires once ``when`` holds."""

    def __init__(self, faults: Faults, kind: str, when: Condition | None) -> None:
        self._faults = faults
        self._kind = kind
        self._when = when
        self.fired = False

    def due(self) -> bool:
        if self.fired:
            return True
        if self._when is not None and not self._when():
            return False
        self.fired = True
        with self._faults._lock:
            self._faults.fired[self._kind] += 1
        return True


@dataclass
class _Throttle:
    """One dynamodb_throttle arming: ``remaining`` more throttles of ``operation`` (or any),
    each once ``when`` holds."""

    remaining: int
    code: str
    operation: str | None
    when: Condition | None


class Faults:
    """Armed faults, consumed by the moto hooks. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lambda_throttles: Counter[str] = Counter()
        self._ecs_capacity: list[str] = []
        self._ecs_spot_interruptions = 0
        self._running: dict[str, list[tuple[Condition | None, int | None]]] = {}
        self._dynamodb_throttles: list[_Throttle] = []
        self._s3_range_faults: list[tuple[str, str | None]] = []
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

    def ecs_spot_interruption_running(
        self, *, times: int = 1, when: Condition | None = None, unit: int | None = None
    ) -> None:
        """The next ``times`` ECS tasks are reclaimed by Fargate Spot while their worker runs,
        once ``when`` holds (at once if None): the process group gets SIGTERM (SIGKILL 2 s
        later) and the task stops with ``StopCode`` ``SpotInterruption`` ("Amazon ECS stopped
        task error codes"). ``unit``: only the tasks of that work unit."""
        self._arm_running("ecs_spot_interruption_running", times, when, unit)

    def batch_host_termination(
        self, *, times: int = 1, when: Condition | None = None, unit: int | None = None
    ) -> None:
        """The next ``times`` Batch jobs lose their host while the worker runs, once ``when``
        holds: the process is killed, the container has no exit code and the job fails with
        ``statusReason`` ``Host EC2 (instance i-...) terminated.``, as Batch reports a
        reclaimed Spot instance ("Troubleshooting AWS Batch"). ``unit``: only that unit's jobs."""
        self._arm_running("batch_host_termination", times, when, unit)

    def lambda_process_exit(
        self, function: str, *, times: int = 1, when: Condition | None = None
    ) -> None:
        """The next ``times`` invocations of ``function`` lose their runtime process once
        ``when`` holds: the handler stops where it is and Lambda answers ``Runtime.ExitError``
        ("Runtime exited with error: exit status 1")."""
        self._arm_running(f"lambda_process_exit:{function}", times, when)

    def dynamodb_throttle(
        self,
        *,
        times: int = 1,
        operation: str | None = None,
        code: str = "ProvisionedThroughputExceededException",
        when: Condition | None = None,
    ) -> None:
        """The next ``times`` DynamoDB calls (of ``operation``, e.g. ``UpdateItem``, or any;
        once ``when`` holds) answer HTTP 400 with ``code``
        (``ProvisionedThroughputExceededException`` or ``ThrottlingException``), as DynamoDB
        does past its capacity. ``when`` must not call DynamoDB itself."""
        with self._lock:
            self._dynamodb_throttles.append(_Throttle(times, code, operation, when))

    def s3_range_failure(
        self, *, times: int = 1, kind: str = "SlowDown", key_contains: str | None = None
    ) -> None:
        """The next ``times`` ranged S3 GETs (of keys containing ``key_contains``, or any) fail:
        ``kind`` ``SlowDown`` (503), ``InternalError`` (500) or ``truncated`` (the body ends
        before its Content-Length: seen only by in-process clients, whose responses moto does
        not re-frame; the server re-counts a short body's length)."""
        if kind not in ("SlowDown", "InternalError", "truncated"):
            raise ValueError("kind must be SlowDown, InternalError or truncated")
        with self._lock:
            self._s3_range_faults.extend([(kind, key_contains)] * times)

    def _arm_running(
        self, kind: str, times: int, when: Condition | None, unit: int | None = None
    ) -> None:
        with self._lock:
            self._running.setdefault(kind, []).extend([(when, unit)] * times)

    def clear(self) -> None:
        with self._lock:
            self._lambda_throttles.clear()
            self._ecs_capacity.clear()
            self._ecs_spot_interruptions = 0
            self._running.clear()
            self._dynamodb_throttles.clear()
            self._s3_range_faults.clear()
            self.fired.clear()

    def take_running(self, kind: str, *names: str, command: Sequence[str] = ()) -> Reclaim | None:
        """The running fault armed for ``kind`` (or ``kind:name``), assigned to one task; a
        fault for one unit only to a task whose ``command`` runs that unit."""
        unit = _unit_of(command)
        with self._lock:
            for key in (kind, *(f"{kind}:{name}" for name in names)):
                armed = self._running.get(key) or []
                for index, (when, only) in enumerate(armed):
                    if only is None or only == unit:
                        del armed[index]
                        return Reclaim(self, kind, when)
            return None

    def take_dynamodb_throttle(self, operation: str) -> str | None:
        with self._lock:
            armed = [throttle for throttle in self._dynamodb_throttles if throttle.remaining]
        # Each arming's condition once, outside the lock: it may take a while (never DynamoDB).
        due = [
            throttle
            for throttle in armed
            if throttle.operation in (None, operation)
            and (throttle.when is None or throttle.when())
        ]
        with self._lock:
            for throttle in due:
                if throttle.remaining > 0:
                    throttle.remaining -= 1
                    if not throttle.remaining:
                        self._dynamodb_throttles.remove(throttle)
                    self.fired["dynamodb_throttle"] += 1
                    return throttle.code
            return None

    def take_s3_range_failure(self, key: str) -> str | None:
        with self._lock:
            for index, (kind, contains) in enumerate(self._s3_range_faults):
                if contains is None or contains in key:
                    del self._s3_range_faults[index]
                    self.fired["s3_range_failure"] += 1
                    return kind
            return None

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


def _unit_of(command: Sequence[str]) -> int | None:
    """The unit a worker command (``run-unit ... --unit N``) runs."""
    arguments = list(command)
    if "--unit" in arguments[:-1]:
        value = arguments[arguments.index("--unit") + 1]
        return int(value) if value.isdigit() else None
    return None
