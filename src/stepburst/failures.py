"""Why a unit failed, and what to do next: the failure policy, by class.

Each route reports a failure its own way, and the state machine hands the report here as it
came:

- Lambda: the task's ``Error`` and ``Cause`` (``Lambda.TooManyRequestsException`` once the
  state's own retries are spent, ``ItemsFailedError`` when the unit's code failed items, the
  class name of anything else the handler raised).
- ECS ``runTask.sync``: the stopped task (``StopCode``, ``StoppedReason``, the container's
  ``ExitCode`` and ``Reason``), or, when no task was placed, ``Error``/``Cause`` with RunTask's
  ``failures`` (``RESOURCE:MEMORY`` ...).
- Batch ``submitJob.sync``: the job (``StatusReason``, the container's ``ExitCode`` and
  ``Reason``).

Classes follow the design: infrastructure failures (throttling, capacity, Spot or host loss,
image pull, service 5xx) retry on their own bound with backoff and full jitter, independent of
the job's ``retries``; application failures (non-zero exit, a raising function) retry
``retries`` times; an out-of-memory kill retries with more memory up to the job's cap; repeated
Spot capacity failures fall back to on-demand. The decision is pure, so it is tested without
AWS; the caller records it in the ledger and the state machine acts on it.

Signals come from the AWS documentation: "Amazon ECS stopped task error codes" and
"Troubleshooting Amazon ECS OutOfMemoryError errors" (ECS developer guide), "API failure
reasons" (RunTask ``RESOURCE:*``), and "Troubleshooting AWS Batch" (host termination).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

# The exit code of a process the kernel's OOM killer (or `docker kill`) ended: 128 + SIGKILL.
KILLED_EXIT_CODE = 137
# Fargate memory steps are 1 GiB above 2 GiB; doubling reaches the cap in few attempts.
MEMORY_GROWTH = 2.0
BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 300

_THROTTLING = frozenset(
    {
        "Lambda.TooManyRequestsException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "ThrottledError",
        "AwsUnavailableError",
        "ConnectionDroppedError",
        "ECS.AmazonECSException",
        "ECS.ServerException",
        "ECS.ThrottlingException",
        "Batch.AWSBatchException",
        "Batch.ServerException",
        "Batch.TooManyRequestsException",
    }
)
_TIMEOUT = frozenset({"Sandbox.Timedout", "States.Timeout"})
_SPOT_STOP_CODES = frozenset({"SpotInterruption", "TerminationNotice"})
# How `stepburst cancel RUN --item NAME` stops a unit's container: the start of the reason it
# gives ECS StopTask and Batch TerminateJob, which the stopped task's ``StoppedReason`` and the
# job's ``StatusReason`` carry back (ECS and Batch API references, StopTask and TerminateJob).
ITEM_CANCEL_REASON = "stepburst: item cancelled by the user"
ITEM_CANCELLED_ERROR = "Stepburst.ItemCancelled"
_INFRASTRUCTURE_REASONS = (
    "CannotPullContainerError",
    "ResourceInitializationError",
    "CannotStartContainerError",
    "Host EC2",
    "Task failed to start",
    "DockerTimeoutError",
)


class FailureClass(StrEnum):
    INFRASTRUCTURE = "infrastructure"
    CAPACITY = "capacity"
    SPOT_INTERRUPTION = "spot_interruption"
    OUT_OF_MEMORY = "out_of_memory"
    TIMEOUT = "timeout"
    APPLICATION = "application"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt of a unit, as the ledger keeps it."""

    failure_class: FailureClass
    error: str
    cause: str
    exit_code: int | None = None
    stop_reason: str | None = None
    ran_on: str | None = None

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "class": self.failure_class.value,
            "error": self.error,
            "cause": self.cause,
        }
        if self.exit_code is not None:
            record["exit_code"] = self.exit_code
        if self.stop_reason:
            record["stop_reason"] = self.stop_reason
        if self.ran_on:
            record["ran_on"] = self.ran_on
        return record


@dataclass(frozen=True, slots=True)
class Attempts:
    """How many attempts of a unit failed, per class (the state machine carries this)."""

    counts: Mapping[str, int] = field(default_factory=dict)

    def of(self, failure_class: FailureClass) -> int:
        return int(self.counts.get(failure_class.value, 0))

    def plus(self, failure_class: FailureClass) -> Attempts:
        return Attempts({**self.counts, failure_class.value: self.of(failure_class) + 1})

    def to_state(self) -> dict[str, int]:
        return {name: int(count) for name, count in self.counts.items()}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A job's failure policy (``retries`` and ``failure_policy`` in its file)."""

    application_retries: int
    infrastructure_attempts: int = 6
    memory_cap_mb: int = 30720
    spot_fallback_after: int = 2


@dataclass(frozen=True, slots=True)
class Decision:
    """What the state machine does next with a failed unit."""

    failure: Failure
    retry: bool
    attempts: Attempts
    wait_seconds: int = 0
    route: str | None = None
    memory_mb: int | None = None
    on_demand: bool = False
    reason: str = ""


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _cause_document(cause: Any) -> Any:
    """A task's Cause is JSON text when it carries the ECS task or Batch job description."""
    if isinstance(cause, str) and cause.startswith("{"):
        try:
            return json.loads(cause)
        except ValueError:
            return cause
    return cause


def _exit_code(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def item_cancel_stop(reason: str, exit_code: int | None, ran_on: str | None) -> Failure | None:
    """The stop of a container by an item cancel, from the reason ECS or Batch reports."""
    if not reason.startswith(ITEM_CANCEL_REASON):
        return None
    return Failure(FailureClass.CANCELLED, ITEM_CANCELLED_ERROR, reason, exit_code, reason, ran_on)


def classify_lambda(error: str, cause: Any) -> Failure:
    """A Lambda unit's error name and cause."""
    document = _cause_document(cause)
    message = _text(document.get("errorMessage") if isinstance(document, dict) else document)
    if error in _TIMEOUT:
        return Failure(FailureClass.TIMEOUT, error, message or "the function timed out")
    if error in _THROTTLING:
        return Failure(FailureClass.INFRASTRUCTURE, error, message or error)
    if error == "Runtime.OutOfMemory" or "Runtime exited with error: signal: killed" in message:
        return Failure(FailureClass.OUT_OF_MEMORY, error, message)
    return Failure(FailureClass.APPLICATION, error, message or error)


def classify_ecs(task: Mapping[str, Any] | None, error: str = "", cause: Any = None) -> Failure:
    """An ECS unit: the stopped task, or RunTask's failure when no task was placed."""
    if task and "TaskArn" not in task and ("Failures" in task or "Tasks" in task):
        # runTask.sync failed without a task: its Cause is RunTask's answer, with failures.
        return classify_ecs(None, error or "ECS.RunTask", task)
    if not task and error in _TIMEOUT:
        return Failure(FailureClass.TIMEOUT, error, "the unit ran past its time limit")
    if not task:
        text = _text(cause)
        if "RESOURCE:" in text or "Capacity is unavailable" in text:
            reason = next((part for part in _capacity_reasons(cause)), text[:200] or "no capacity")
            return Failure(FailureClass.CAPACITY, error or "ECS.RunTask", reason)
        return Failure(FailureClass.INFRASTRUCTURE, error or "ECS.RunTask", text or error)
    containers = task.get("Containers") or [{}]
    container = containers[0] if containers else {}
    exit_code = _exit_code(container.get("ExitCode"))
    stop_code = _text(task.get("StopCode"))
    stopped_reason = _text(task.get("StoppedReason"))
    container_reason = _text(container.get("Reason"))
    ran_on = _text(task.get("TaskArn")) or None
    cancelled = item_cancel_stop(stopped_reason, exit_code, ran_on)
    if cancelled is not None:
        return cancelled
    if stop_code in _SPOT_STOP_CODES:
        return Failure(
            FailureClass.SPOT_INTERRUPTION,
            "ECS.SpotInterruption",
            stopped_reason or "the Spot capacity was reclaimed",
            exit_code,
            stopped_reason or stop_code,
            ran_on,
        )
    if "OutOfMemoryError" in container_reason or exit_code == KILLED_EXIT_CODE:
        return Failure(
            FailureClass.OUT_OF_MEMORY,
            "ECS.OutOfMemory",
            container_reason or f"the worker was killed (exit {exit_code})",
            exit_code,
            stopped_reason,
            ran_on,
        )
    if exit_code is None and (
        stop_code == "TaskFailedToStart"
        or any(marker in stopped_reason for marker in _INFRASTRUCTURE_REASONS)
    ):
        return Failure(
            FailureClass.INFRASTRUCTURE,
            "ECS.TaskFailedToStart",
            stopped_reason or "the task did not start",
            None,
            stopped_reason,
            ran_on,
        )
    if exit_code is None:
        return Failure(
            FailureClass.INFRASTRUCTURE,
            "Stepburst.ContainerStopped",
            f"the worker stopped without an exit code: {stopped_reason}",
            None,
            stopped_reason,
            ran_on,
        )
    return Failure(
        FailureClass.APPLICATION,
        "Stepburst.ContainerExitCode",
        f"the worker exited with code {exit_code}: {stopped_reason}",
        exit_code,
        stopped_reason,
        ran_on,
    )


def classify_batch(job: Mapping[str, Any] | None, error: str = "", cause: Any = None) -> Failure:
    """A Batch unit: the finished job, or the submission's error."""
    if not job and error in _TIMEOUT:
        return Failure(FailureClass.TIMEOUT, error, "the unit ran past its time limit")
    if not job:
        return Failure(FailureClass.INFRASTRUCTURE, error or "Batch.SubmitJob", _text(cause))
    container = job.get("Container") or {}
    exit_code = _exit_code(container.get("ExitCode"))
    status_reason = _text(job.get("StatusReason"))
    container_reason = _text(container.get("Reason"))
    ran_on = _text(job.get("JobArn") or job.get("JobId")) or None
    for reason in (status_reason, container_reason):
        cancelled = item_cancel_stop(reason, exit_code, ran_on)
        if cancelled is not None:
            return cancelled
    if "OutOfMemoryError" in container_reason or exit_code == KILLED_EXIT_CODE:
        return Failure(
            FailureClass.OUT_OF_MEMORY,
            "Batch.OutOfMemory",
            container_reason or f"the worker was killed (exit {exit_code})",
            exit_code,
            status_reason,
            ran_on,
        )
    if exit_code is None and ("Host EC2" in status_reason or "Spot" in status_reason):
        return Failure(
            FailureClass.SPOT_INTERRUPTION,
            "Batch.HostTerminated",
            status_reason,
            None,
            status_reason,
            ran_on,
        )
    if exit_code is None:
        return Failure(
            FailureClass.INFRASTRUCTURE,
            "Stepburst.ContainerStopped",
            f"the Batch job ended without an exit code: {status_reason}",
            None,
            status_reason,
            ran_on,
        )
    return Failure(
        FailureClass.APPLICATION,
        "Stepburst.ContainerExitCode",
        f"the worker exited with code {exit_code}: {status_reason}",
        exit_code,
        status_reason,
        ran_on,
    )


def _capacity_reasons(cause: Any) -> list[str]:
    document = _cause_document(cause)
    failures = (
        document.get("Failures") or document.get("failures") if isinstance(document, dict) else None
    )
    if not isinstance(failures, list):
        text = _text(cause)
        start = text.find("RESOURCE:")
        return [text[start:].split()[0].strip("\"',}]")] if start >= 0 else []
    return [_text(entry.get("Reason") or entry.get("reason")) for entry in failures if entry]


def backoff_seconds(attempt: int, rng: random.Random) -> int:
    """Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
    Jitter"): a uniform wait up to base * 2^attempt, capped."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt))
    return int(rng.uniform(0, ceiling))


def decide(
    failure: Failure,
    *,
    route: str,
    fallback: str,
    attempts: Attempts,
    policy: RetryPolicy,
    memory_mb: int,
    spot: bool,
    rng: random.Random | None = None,
    others_pending: bool = False,
) -> Decision:
    """Whether, where and how a failed unit runs again. Pure: the caller records the result.

    ``others_pending``: the unit has unfinished items besides those cancelled by the user.
    """
    chooser = rng or random.Random()
    counted = attempts.plus(failure.failure_class)
    done = Decision(failure=failure, retry=False, attempts=counted)
    kind = failure.failure_class
    if kind is FailureClass.CANCELLED and failure.error == ITEM_CANCELLED_ERROR:
        if others_pending:
            # Not the unit's failure: its other items run again at once, on no bound's count.
            return replace(
                done,
                retry=True,
                route=route,
                reason="items cancelled by the user; the unit's other items run again",
            )
        return replace(done, reason="every unfinished item of the unit was cancelled by the user")
    if kind is FailureClass.CANCELLED:
        return replace(done, reason="the run was cancelled")
    if kind is FailureClass.TIMEOUT:
        if route != "lambda":
            return replace(done, reason="the container hit the unit's time limit")
        # Lambda's 900 s wall: the unit continues on a container, skipping finished items.
        return replace(done, retry=True, route=fallback, reason="rerouted past Lambda's limit")
    if kind is FailureClass.APPLICATION:
        if counted.of(kind) > policy.application_retries:
            return replace(done, reason=f"failed {counted.of(kind)} times; retries spent")
        return replace(
            done,
            retry=True,
            route=route,
            wait_seconds=backoff_seconds(counted.of(kind) - 1, chooser),
            reason=f"application failure {counted.of(kind)} of {policy.application_retries + 1}",
        )
    if kind is FailureClass.OUT_OF_MEMORY:
        if route == "lambda":
            return replace(
                done, retry=True, route=fallback, reason="out of memory on Lambda: a container"
            )
        if memory_mb >= policy.memory_cap_mb:
            return replace(done, reason=f"out of memory at the cap of {policy.memory_cap_mb} MB")
        grown = min(policy.memory_cap_mb, int(memory_mb * MEMORY_GROWTH))
        return replace(
            done,
            retry=True,
            route=route,
            memory_mb=grown,
            reason=f"out of memory at {memory_mb} MB: again with {grown} MB",
        )
    # Infrastructure, capacity and Spot: their own bound, never the job's retries.
    infrastructure = sum(
        counted.of(name)
        for name in (
            FailureClass.INFRASTRUCTURE,
            FailureClass.CAPACITY,
            FailureClass.SPOT_INTERRUPTION,
        )
    )
    if infrastructure >= policy.infrastructure_attempts:
        return replace(
            done,
            reason=f"{infrastructure} infrastructure failures; the bound is "
            f"{policy.infrastructure_attempts}",
        )
    spot_losses = counted.of(FailureClass.CAPACITY) + counted.of(FailureClass.SPOT_INTERRUPTION)
    on_demand = spot and spot_losses >= policy.spot_fallback_after
    return replace(
        done,
        retry=True,
        route=route,
        on_demand=on_demand,
        wait_seconds=backoff_seconds(infrastructure - 1, chooser),
        reason="infrastructure failure, retried"
        + ("; falling back to on-demand capacity" if on_demand else ""),
    )
