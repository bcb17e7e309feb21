"""Waiting in tests: one poll loop with a deadline that also stops as soon as the thing it
waits for has failed, instead of spinning until the deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# An execution in one of these ended without succeeding (DescribeExecution's status values:
# https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html).
FAILED_EXECUTION_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
ENDED_EXECUTION_STATUSES = FAILED_EXECUTION_STATUSES | {"SUCCEEDED"}


@dataclass(frozen=True)
class Pending:
    """A "not yet" from ``until`` that says what it saw, for the message at the deadline."""

    seen: object

    def __bool__(self) -> bool:
        return False


class PollFailedError(AssertionError):
    """What was waited for failed; the message says what and what was seen."""


class PollTimeoutError(AssertionError):
    """What was waited for did not happen before the deadline."""


def poll(
    until: Callable[[], T | Pending | None],
    *,
    what: str,
    timeout: float,
    interval: float = 0.1,
    fail_if: Callable[[], object] | None = None,
) -> T:
    """Call ``until`` every ``interval`` seconds and return its first truthy value (a falsy
    value or a :class:`Pending` means not yet).

    After each falsy answer ``fail_if`` (when given) is asked whether the thing has failed: a
    truthy answer is what it saw, and raises :class:`PollFailedError` at once. At the deadline
    :class:`PollTimeoutError` says what was waited for and the last answer. Exceptions from
    either callable propagate: an error is never retried.
    """
    if timeout <= 0 or interval <= 0:
        raise ValueError(f"timeout and interval must be positive (got {timeout}, {interval})")
    started = time.monotonic()
    deadline = started + timeout
    checks = 0
    while True:
        value = until()
        checks += 1
        if value and not isinstance(value, Pending):
            return value
        if fail_if is not None and (seen := fail_if()):
            elapsed = time.monotonic() - started
            raise PollFailedError(f"{what}: failed after {elapsed:.1f} s: {seen!r}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            last = value.seen if isinstance(value, Pending) else value
            raise PollTimeoutError(
                f"{what}: not done after {timeout:g} s ({checks} checks); last saw {last!r}"
            )
        time.sleep(min(interval, remaining))


def failed_execution(described: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A described execution (DescribeExecution) if it ended without succeeding, else None."""
    return described if described["status"] in FAILED_EXECUTION_STATUSES else None


def ended_execution(described: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A described execution if it has ended at all, else None (for waits that must see
    something happen while the execution is still running)."""
    return described if described["status"] in ENDED_EXECUTION_STATUSES else None
