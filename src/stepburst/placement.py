"""Where a unit ran: kept on every item's ledger record, success or failure.

On Lambda it is the request id and the log group and stream of the invocation; in a container
it is the ECS task (and, on AWS Batch, the job) and the awslogs stream the container writes
to, read from the task metadata endpoint that ECS and Batch on Fargate give every container:
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-metadata-endpoint-v4-fargate.html
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from stepburst.observability import logger

METADATA_ENV = "ECS_CONTAINER_METADATA_URI_V4"
BATCH_JOB_ENV = "AWS_BATCH_JOB_ID"
METADATA_TIMEOUT_SECONDS = 2
TASK_ARN_LABEL = "com.amazonaws.ecs.task-arn"

Placement = dict[str, str]
MetadataReader = Callable[[str], Mapping[str, Any]]


class InvocationContext(Protocol):
    """The Lambda context attributes read here."""

    @property
    def aws_request_id(self) -> str: ...
    @property
    def log_group_name(self) -> str: ...
    @property
    def log_stream_name(self) -> str: ...


def on_lambda(context: InvocationContext) -> Placement:
    return _present(
        {
            "platform": "lambda",
            "request_id": context.aws_request_id,
            "log_group": context.log_group_name,
            "log_stream": context.log_stream_name,
        }
    )


def _read_metadata(url: str) -> Mapping[str, Any]:
    with urllib.request.urlopen(url, timeout=METADATA_TIMEOUT_SECONDS) as response:
        document: Mapping[str, Any] = json.loads(response.read())
    return document


def batch_job_arn(task_arn: str, job_id: str) -> str:
    """A Batch job's ARN, in the task's partition, region and account."""
    partition, region, account = task_arn.split(":")[1:2] + task_arn.split(":")[3:5]
    return f"arn:{partition}:batch:{region}:{account}:job/{job_id}"


def in_container(
    route: str,
    environ: Mapping[str, str] | None = None,
    read_metadata: MetadataReader = _read_metadata,
) -> Placement:
    """The task (and Batch job) this container belongs to, and its log stream.

    Whatever the metadata endpoint cannot tell (it is absent outside ECS and Batch, or did
    not answer) is left out: knowing less about a unit never fails it.
    """
    source = os.environ if environ is None else environ
    placement: Placement = {"platform": route}
    job_id = source.get(BATCH_JOB_ENV, "")
    if job_id:
        placement["batch_job_id"] = job_id
    endpoint = source.get(METADATA_ENV, "")
    if not endpoint:
        return placement
    try:
        container = read_metadata(endpoint)
    except (OSError, ValueError) as error:
        logger.warning("task metadata unavailable", extra={"reason": str(error)})
        return placement
    task_arn = str((container.get("Labels") or {}).get(TASK_ARN_LABEL, ""))
    options = container.get("LogOptions") or {}
    placement.update(
        _present(
            {
                "task_arn": task_arn,
                "log_group": str(options.get("awslogs-group", "")),
                "log_stream": str(options.get("awslogs-stream", "")),
            }
        )
    )
    if job_id and task_arn.count(":") >= 5:
        placement["batch_job_arn"] = batch_job_arn(task_arn, job_id)
    return placement


def _present(values: Mapping[str, str]) -> Placement:
    return {name: value for name, value in values.items() if value}
