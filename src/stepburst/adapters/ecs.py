"""ECS: find and stop the worker tasks a run started."""

from __future__ import annotations

from stepburst import aws
from stepburst.adapters.translation import Codes, translated
from stepburst.errors import ResourceNotFoundError

# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html
_CODES: Codes = {"ClusterNotFoundException": ResourceNotFoundError}


def running_tasks(cluster: str, started_by: str) -> list[str]:
    """ARNs of the cluster's tasks started by ``started_by`` that have not been told to stop."""
    with translated(f"listing tasks of {started_by} in {cluster}", _CODES):
        pages = (
            aws.client("ecs")
            .get_paginator("list_tasks")
            .paginate(cluster=cluster, startedBy=started_by, desiredStatus="RUNNING")
        )
        return [arn for page in pages for arn in page["taskArns"]]


def stop_task(cluster: str, task_arn: str, *, reason: str) -> None:
    with translated(f"stopping task {task_arn}", _CODES):
        aws.client("ecs").stop_task(cluster=cluster, task=task_arn, reason=reason)
