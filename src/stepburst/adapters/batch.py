"""AWS Batch: find and terminate the worker jobs a run submitted."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from stepburst import aws
from stepburst.adapters.translation import translated

if TYPE_CHECKING:
    from types_boto3_batch.literals import JobStatusType

# Statuses of a job that has not finished; TerminateJob stops a job in any of them.
# https://docs.aws.amazon.com/batch/latest/APIReference/API_TerminateJob.html
UNFINISHED: tuple[JobStatusType, ...] = (
    "SUBMITTED",
    "PENDING",
    "RUNNABLE",
    "STARTING",
    "RUNNING",
)


def unfinished_jobs(queue: str, named: Callable[[str], bool]) -> list[str]:
    """IDs of the queue's unfinished jobs whose names ``named`` accepts."""
    batch = aws.client("batch")
    found: list[str] = []
    with translated(f"listing jobs in {queue}"):
        for status in UNFINISHED:
            pages = batch.get_paginator("list_jobs").paginate(jobQueue=queue, jobStatus=status)
            found.extend(
                job["jobId"]
                for page in pages
                for job in page["jobSummaryList"]
                if named(job["jobName"])
            )
    return found


def terminate_job(job_id: str, *, reason: str) -> None:
    with translated(f"terminating job {job_id}"):
        aws.client("batch").terminate_job(jobId=job_id, reason=reason)
