"""The suite's one poll loop: the value it waited for, a failure at once, a clear deadline."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.polling import (
    Pending,
    PollFailedError,
    PollTimeoutError,
    ended_execution,
    failed_execution,
    poll,
)

pytestmark = pytest.mark.unit


class Answers:
    """A stand-in probe: gives its values one per call, then repeats the last; counts calls."""

    def __init__(self, *values: Any) -> None:
        self.values = values
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.values[min(self.calls, len(self.values)) - 1]


def test_returns_the_first_truthy_value_until_gives() -> None:
    until = Answers(None, [], {"status": "SUCCEEDED"})

    assert poll(until, what="the run", timeout=5, interval=0.001) == {"status": "SUCCEEDED"}
    assert until.calls == 3


def test_a_failure_raises_at_once_with_what_it_saw() -> None:
    fail_if = Answers(None, {"status": "FAILED", "cause": "boom"})
    started = time.monotonic()

    with pytest.raises(PollFailedError, match=r"the run ends: failed after .*'cause': 'boom'"):
        poll(lambda: None, fail_if=fail_if, what="the run ends", timeout=30, interval=0.001)
    assert time.monotonic() - started < 5  # far from the 30 s deadline
    assert fail_if.calls == 2


def test_the_deadline_names_what_was_awaited_and_the_last_answer() -> None:
    until = Answers(Pending({"RUNNING": 0}), Pending({"RUNNING": 0, "PENDING": 1}))
    started = time.monotonic()

    with pytest.raises(PollTimeoutError) as raised:
        poll(until, what="a container starts", timeout=0.2, interval=0.02)
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 5
    message = str(raised.value)
    assert message.startswith("a container starts: not done after 0.2 s")
    assert "{'RUNNING': 0, 'PENDING': 1}" in message
    assert until.calls >= 2


def test_done_wins_over_a_failure_seen_in_the_same_round() -> None:
    fail_if = Answers({"status": "FAILED"})

    assert poll(lambda: "done", fail_if=fail_if, what="x", timeout=1) == "done"
    assert fail_if.calls == 0


def test_errors_are_raised_not_retried() -> None:
    def broken() -> None:
        calls.append(1)
        raise KeyError("status")

    calls: list[int] = []
    with pytest.raises(KeyError):
        poll(broken, what="x", timeout=5, interval=0.001)
    assert calls == [1]


@pytest.mark.parametrize(("timeout", "interval"), [(0, 0.1), (1, 0), (-1, 0.1)])
def test_a_deadline_and_an_interval_are_required(timeout: float, interval: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        poll(lambda: True, what="x", timeout=timeout, interval=interval)


@pytest.mark.parametrize(
    ("status", "failed", "ended"),
    [
        ("RUNNING", False, False),
        ("PENDING_REDRIVE", False, False),
        ("SUCCEEDED", False, True),
        ("FAILED", True, True),
        ("TIMED_OUT", True, True),
        ("ABORTED", True, True),
    ],
)
def test_execution_statuses(status: str, failed: bool, ended: bool) -> None:
    described = {"status": status, "executionArn": "arn"}

    assert (failed_execution(described) == described) is failed
    assert (ended_execution(described) == described) is ended
