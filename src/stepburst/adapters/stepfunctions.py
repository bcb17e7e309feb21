"""Step Functions: start, describe and stop the coordinator's executions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stepburst import aws
from stepburst.adapters.translation import Codes, translated
from stepburst.errors import ExecutionAlreadyExistsError, ExecutionNotFoundError

# https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
_START_CODES: Codes = {"ExecutionAlreadyExists": ExecutionAlreadyExistsError}
# https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
_EXECUTION_CODES: Codes = {"ExecutionDoesNotExist": ExecutionNotFoundError}


@dataclass(frozen=True, slots=True)
class StartedExecution:
    arn: str
    started_at: datetime


def start_execution(
    state_machine_arn: str, name: str, document: Mapping[str, Any]
) -> StartedExecution:
    """Start an execution named ``name`` with ``document`` as its JSON input."""
    with translated(f"starting execution {name}", _START_CODES):
        response = aws.client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(document)
        )
    return StartedExecution(arn=response["executionArn"], started_at=response["startDate"])


def execution_status(execution_arn: str) -> str:
    """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED or PENDING_REDRIVE."""
    with translated(f"describing execution {execution_arn}", _EXECUTION_CODES):
        response = aws.client("stepfunctions").describe_execution(executionArn=execution_arn)
    return response["status"]


def stop_execution(execution_arn: str, *, error: str, cause: str) -> None:
    with translated(f"stopping execution {execution_arn}", _EXECUTION_CODES):
        aws.client("stepfunctions").stop_execution(
            executionArn=execution_arn, error=error, cause=cause
        )
