"""Where a unit ran, as its items' ledger records keep it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from stepburst import placement

pytestmark = pytest.mark.unit

TASK_ARN = "arn:aws:ecs:eu-west-1:123456789012:task/stepburst-cluster/0123456789abcdef"
ENDPOINT = "http://169.254.170.2/v4/abc"


def container_metadata(stream: str) -> dict[str, Any]:
    """The fields read from a Fargate container's metadata (the v4 container response)."""
    return {
        "Name": "worker",
        "Labels": {"com.amazonaws.ecs.task-arn": TASK_ARN},
        "LogDriver": "awslogs",
        "LogOptions": {"awslogs-group": "/stepburst/s/worker", "awslogs-stream": stream},
    }


class Context:
    aws_request_id = "5b2f8d6e-0000-4c1a-9f00-3c1d2a6a9e11"
    log_group_name = "/aws/lambda/s/process-items"
    log_stream_name = "2026/11/21/[$LATEST]5b2f8d6e"


def test_on_lambda_names_the_request_and_its_log_stream() -> None:
    assert placement.on_lambda(Context()) == {
        "platform": "lambda",
        "request_id": Context.aws_request_id,
        "log_group": "/aws/lambda/s/process-items",
        "log_stream": "2026/11/21/[$LATEST]5b2f8d6e",
    }


def test_an_ecs_task_names_its_task_and_log_stream() -> None:
    asked: list[str] = []

    def read(url: str) -> Mapping[str, Any]:
        asked.append(url)
        return container_metadata("ecs/worker/0123456789abcdef")

    found = placement.in_container("ecs", {"ECS_CONTAINER_METADATA_URI_V4": ENDPOINT}, read)

    assert asked == [ENDPOINT]
    assert found == {
        "platform": "ecs",
        "task_arn": TASK_ARN,
        "log_group": "/stepburst/s/worker",
        "log_stream": "ecs/worker/0123456789abcdef",
    }


def test_a_batch_job_names_its_job_arn_in_the_tasks_account() -> None:
    environ = {"ECS_CONTAINER_METADATA_URI_V4": ENDPOINT, "AWS_BATCH_JOB_ID": "f00d-1"}

    found = placement.in_container(
        "batch", environ, lambda _: container_metadata("batch/default/0123456789abcdef")
    )

    assert found["batch_job_id"] == "f00d-1"
    assert found["batch_job_arn"] == "arn:aws:batch:eu-west-1:123456789012:job/f00d-1"
    assert found["log_stream"] == "batch/default/0123456789abcdef"


def test_an_unreachable_metadata_endpoint_leaves_out_what_it_would_tell() -> None:
    def refuse(url: str) -> Mapping[str, Any]:
        raise ConnectionRefusedError(url)

    environ = {"ECS_CONTAINER_METADATA_URI_V4": ENDPOINT}
    assert placement.in_container("ecs", environ, refuse) == {"platform": "ecs"}
    assert placement.in_container("ecs", {}, refuse) == {"platform": "ecs"}
