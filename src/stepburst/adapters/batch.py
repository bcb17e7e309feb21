"""AWS Batch: find and terminate the worker jobs a run submitted; keep the jobs' job
definitions, and the compute environments and queues of jobs that have their own."""

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


# -- compute environments and queues -------------------------------------------------------


def compute_environments(prefix: str) -> list[dict[str, Any]]:
    """The compute environments whose names start with ``prefix``, as Batch describes them."""
    with translated(f"listing compute environments {prefix}*"):
        pages = aws.client("batch").get_paginator("describe_compute_environments").paginate()
        return [
            dict(environment)
            for page in pages
            for environment in page["computeEnvironments"]
            if environment["computeEnvironmentName"].startswith(prefix)
        ]


def compute_environment(name: str) -> dict[str, Any] | None:
    """The compute environment ``name``, or None once it is gone."""
    with translated(f"describing compute environment {name}"):
        found = aws.client("batch").describe_compute_environments(computeEnvironments=[name])
    return next(iter(dict(environment) for environment in found["computeEnvironments"]), None)


def create_compute_environment(request: dict[str, Any]) -> str:
    """Create a compute environment (CreateComputeEnvironment's request); returns its ARN."""
    with translated(f"creating compute environment {request.get('computeEnvironmentName')}"):
        created = aws.client("batch").create_compute_environment(**request)
    return created["computeEnvironmentArn"]


def update_compute_environment(
    name: str, *, state: str | None = None, compute_resources: dict[str, Any] | None = None
) -> None:
    request: dict[str, Any] = {"computeEnvironment": name}
    if state is not None:
        request["state"] = state
    if compute_resources:
        request["computeResources"] = compute_resources
    with translated(f"updating compute environment {name}"):
        aws.client("batch").update_compute_environment(**request)


def delete_compute_environment(name: str) -> None:
    with translated(f"deleting compute environment {name}"):
        aws.client("batch").delete_compute_environment(computeEnvironment=name)


def job_queues(prefix: str) -> list[dict[str, Any]]:
    """The job queues whose names start with ``prefix``, as Batch describes them."""
    with translated(f"listing job queues {prefix}*"):
        pages = aws.client("batch").get_paginator("describe_job_queues").paginate()
        return [
            dict(queue)
            for page in pages
            for queue in page["jobQueues"]
            if queue["jobQueueName"].startswith(prefix)
        ]


def job_queue(name: str) -> dict[str, Any] | None:
    """The job queue ``name``, or None once it is gone."""
    with translated(f"describing job queue {name}"):
        found = aws.client("batch").describe_job_queues(jobQueues=[name])
    return next(iter(dict(queue) for queue in found["jobQueues"]), None)


def create_job_queue(request: dict[str, Any]) -> str:
    """Create a job queue (CreateJobQueue's request); returns its ARN."""
    with translated(f"creating job queue {request.get('jobQueueName')}"):
        created = aws.client("batch").create_job_queue(**request)
    return created["jobQueueArn"]


def update_job_queue(
    name: str,
    *,
    state: str | None = None,
    compute_environment_order: list[dict[str, Any]] | None = None,
) -> None:
    request: dict[str, Any] = {"jobQueue": name}
    if state is not None:
        request["state"] = state
    if compute_environment_order is not None:
        request["computeEnvironmentOrder"] = compute_environment_order
    with translated(f"updating job queue {name}"):
        aws.client("batch").update_job_queue(**request)


def delete_job_queue(name: str) -> None:
    with translated(f"deleting job queue {name}"):
        aws.client("batch").delete_job_queue(jobQueue=name)
