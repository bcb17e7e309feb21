"""ECS: find and stop the worker tasks a run started; keep the jobs' task definitions."""

from __future__ import annotations

from typing import Any

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


def tasks_running_command(cluster: str, task_arns: list[str], command: list[str]) -> list[str]:
    """Those of ``task_arns`` whose container command override contains ``command`` (in
    order): the run's tasks that run one unit."""
    found: list[str] = []
    # DescribeTasks takes at most 100 tasks a request.
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html
    for start in range(0, len(task_arns), 100):
        with translated(f"describing tasks of {cluster}", _CODES):
            described = aws.client("ecs").describe_tasks(
                cluster=cluster, tasks=task_arns[start : start + 100]
            )
        for task in described.get("tasks", []):
            overrides = task.get("overrides") or {}
            for container in overrides.get("containerOverrides") or []:
                given = list(container.get("command") or [])
                if any(
                    given[i : i + len(command)] == command
                    for i in range(len(given) - len(command) + 1)
                ):
                    found.append(task["taskArn"])
                    break
    return found


def stop_task(cluster: str, task_arn: str, *, reason: str) -> None:
    with translated(f"stopping task {task_arn}", _CODES):
        aws.client("ecs").stop_task(cluster=cluster, task=task_arn, reason=reason)


def task_definition_families(prefix: str) -> list[str]:
    """Families with an ACTIVE revision whose names start with ``prefix``."""
    with translated(f"listing task definition families {prefix}*"):
        pages = (
            aws.client("ecs")
            .get_paginator("list_task_definition_families")
            .paginate(familyPrefix=prefix, status="ACTIVE")
        )
        return [
            family for page in pages for family in page["families"] if family.startswith(prefix)
        ]


def active_revisions(family: str) -> list[str]:
    """ARNs of a family's ACTIVE revisions, oldest first."""
    with translated(f"listing revisions of {family}"):
        pages = (
            aws.client("ecs")
            .get_paginator("list_task_definitions")
            .paginate(familyPrefix=family, status="ACTIVE", sort="ASC")
        )
        return [
            arn
            for page in pages
            for arn in page["taskDefinitionArns"]
            if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family
        ]


def task_definition_tags(task_definition: str) -> dict[str, str]:
    with translated(f"describing {task_definition}"):
        described = aws.client("ecs").describe_task_definition(
            taskDefinition=task_definition, include=["TAGS"]
        )
    return {tag["key"]: tag["value"] for tag in described.get("tags", []) if "key" in tag}


def register_task_definition(definition: dict[str, Any]) -> str:
    """Register a revision; returns its ARN."""
    with translated(f"registering task definition {definition.get('family')}"):
        registered = aws.client("ecs").register_task_definition(**definition)
    return registered["taskDefinition"]["taskDefinitionArn"]


def deregister_task_definition(arn: str) -> None:
    with translated(f"deregistering {arn}"):
        aws.client("ecs").deregister_task_definition(taskDefinition=arn)
