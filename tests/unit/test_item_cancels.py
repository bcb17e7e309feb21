"""Item cancels without AWS: how a stopped container is read, what is decided next, which
items a unit skips, and how a run's tally counts them."""

from __future__ import annotations

import random

import pytest

from stepburst.failures import (
    ITEM_CANCEL_REASON,
    ITEM_CANCELLED_ERROR,
    Attempts,
    Decision,
    FailureClass,
    RetryPolicy,
    classify_batch,
    classify_ecs,
    decide,
)
from stepburst.item_cancels import cancelled_fields, requested_cancels, skipped_by_cancel
from stepburst.statuses import ItemStatus, RunStatus
from stepburst.tally import tally_run

pytestmark = pytest.mark.unit

REASON = f"{ITEM_CANCEL_REASON} arn:aws:iam::1:user/ana: sleep-15"


def test_an_ecs_task_stopped_by_an_item_cancel_is_a_cancel_whatever_its_exit_code() -> None:
    for exit_code in (None, 143, 137):
        container = {"Name": "worker"} if exit_code is None else {"ExitCode": exit_code}
        task = {
            "TaskArn": "arn:aws:ecs:task/1",
            "StopCode": "UserInitiated",
            "StoppedReason": REASON,
            "Containers": [container],
        }
        failure = classify_ecs(task)
        assert failure.failure_class is FailureClass.CANCELLED
        assert failure.error == ITEM_CANCELLED_ERROR
        assert failure.stop_reason == REASON


def test_a_plain_user_stop_is_not_an_item_cancel() -> None:
    task = {
        "TaskArn": "arn:aws:ecs:task/1",
        "StopCode": "UserInitiated",
        "StoppedReason": "Task stopped by user",
        "Containers": [{"Name": "worker"}],
    }
    assert classify_ecs(task).failure_class is FailureClass.INFRASTRUCTURE


@pytest.mark.parametrize(
    "job",
    [
        {"JobId": "j-1", "StatusReason": REASON, "Container": {"ExitCode": 143}},
        {
            "JobId": "j-1",
            "StatusReason": "Essential container in task exited",
            "Container": {"ExitCode": 143, "Reason": REASON},
        },
    ],
)
def test_a_batch_job_terminated_by_an_item_cancel_is_a_cancel(job: dict[str, object]) -> None:
    failure = classify_batch(job)
    assert (failure.failure_class, failure.error) == (FailureClass.CANCELLED, ITEM_CANCELLED_ERROR)


def _decide(others_pending: bool) -> Decision:
    failure = classify_ecs(
        {"TaskArn": "t", "StoppedReason": REASON, "Containers": [{"ExitCode": 143}]}
    )
    return decide(
        failure,
        route="ecs",
        fallback="ecs",
        attempts=Attempts({"application": 1}),
        policy=RetryPolicy(application_retries=0),
        memory_mb=2048,
        spot=True,
        rng=random.Random(1),
        others_pending=others_pending,
    )


def test_a_unit_with_other_items_runs_again_at_once_and_one_without_ends() -> None:
    again = _decide(others_pending=True)
    ended = _decide(others_pending=False)

    # Retries were spent (application_retries 0, one failure already): a cancel spends none.
    assert (again.retry, again.route, again.wait_seconds) == (True, "ecs", 0)
    assert not ended.retry
    assert "cancelled by the user" in ended.reason


def test_requests_and_skips_hold_for_their_manifest_only() -> None:
    run = {
        "cancelled_items": [
            {"item": 2, "manifest": 0, "by": "ana", "at": "t0"},
            {"item": 5, "manifest": 1, "by": "bo", "at": "t1"},
        ]
    }
    assert set(requested_cancels(run, 0)) == {2}
    assert set(requested_cancels(run, 1)) == {5}
    assert requested_cancels({}, 0) == {}

    record = {"sk": "ITEM#2", **cancelled_fields(requested_cancels(run, 0)[2])}
    assert record["status"] == ItemStatus.CANCELLED
    assert (record["cancelled_by"], record["cancelled_at"]) == ("ana", "t0")
    assert skipped_by_cancel(record, 0)
    # A redrive (manifest 1) runs it again; a whole-run cancel's items carry no manifest.
    assert not skipped_by_cancel(record, 1)
    assert not skipped_by_cancel({"status": ItemStatus.CANCELLED}, 0)
    assert not skipped_by_cancel(None, 0)


def _cancelled(index: int) -> dict[str, object]:
    return {
        "item": index,
        "status": ItemStatus.CANCELLED,
        "route": "ecs",
        "error": ITEM_CANCELLED_ERROR,
        "reason": "cancelled by the user ana at t0",
    }


def _succeeded(index: int) -> dict[str, object]:
    return {"item": index, "status": ItemStatus.SUCCEEDED, "route": "ecs"}


def test_cancelled_items_are_counted_apart_and_spend_the_failure_budget() -> None:
    items = [_succeeded(0), _cancelled(1), _succeeded(2)]

    strict = tally_run(items, planned=3, tolerated_failure_percent=0)
    tolerant = tally_run(items, planned=3, tolerated_failure_percent=50)

    assert (strict.succeeded, strict.failed, strict.cancelled, strict.unfinished) == (2, 0, 1, 0)
    assert strict.status == RunStatus.FAILED
    assert strict.cause is not None
    assert strict.cause.startswith("1 of 3 items cancelled by the user (33.3% > tolerated 0%)")
    assert "item 1 (cancelled by the user ana at t0)" in strict.cause
    assert strict.counts()["cancelled"] == 1
    assert tolerant.status == RunStatus.SUCCEEDED
    assert tolerant.cause is None
