"""AWS Batch: find and terminate the worker jobs a run submitted; keep the jobs' job
definitions."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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


def active_job_definitions(prefix: str) -> list[dict[str, Any]]:
    """ACTIVE job definition revisions whose names start with ``prefix``, oldest first."""
    with translated(f"listing job definitions {prefix}*"):
        pages = (
            aws.client("batch").get_paginator("describe_job_definitions").paginate(status="ACTIVE")
        )
        found = [
            {
                "name": definition["jobDefinitionName"],
                "arn": definition["jobDefinitionArn"],
                "revision": definition["revision"],
                "tags": dict(definition.get("tags") or {}),
            }
            for page in pages
            for definition in page["jobDefinitions"]
            if definition["jobDefinitionName"].startswith(prefix)
        ]
    return sorted(found, key=lambda definition: (definition["name"], definition["revision"]))


def register_job_definition(definition: dict[str, Any]) -> str:
    """Register a revision; returns its ARN."""
    with translated(f"registering job definition {definition.get('jobDefinitionName')}"):
        registered = aws.client("batch").register_job_definition(**definition)
    return registered["jobDefinitionArn"]


def deregister_job_definition(arn: str) -> None:
    with translated(f"deregistering {arn}"):
        aws.client("batch").deregister_job_definition(jobDefinition=arn)
