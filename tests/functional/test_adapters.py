"""The adapters against moto: what each service answers becomes the domain error it means."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest

from stepburst import stack
from stepburst.adapters import ecs, ssm, stepfunctions
from stepburst.errors import (
    ExecutionAlreadyExistsError,
    ExecutionNotFoundError,
    ParameterNotFoundError,
    ResourceNotFoundError,
)
from stepburst.ledger import Ledger
from stepburst.operations import Operations

from .conftest import JOBS_DIR, Cloud

pytestmark = pytest.mark.functional

ROLE = "arn:aws:iam::123456789012:role/sfn"


@pytest.fixture
def machine(cloud: Cloud) -> str:
    created = boto3.client("stepfunctions").create_state_machine(
        name="coordinator",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=ROLE,
    )
    return str(created["stateMachineArn"])


def test_a_second_execution_of_one_name_is_already_exists(machine: str) -> None:
    started = stepfunctions.start_execution(machine, "redrive-abc-1", {"redrive": "r"})
    assert stepfunctions.execution_status(started.arn) in {"RUNNING", "SUCCEEDED"}
    with pytest.raises(ExecutionAlreadyExistsError, match="redrive-abc-1"):
        stepfunctions.start_execution(machine, "redrive-abc-1", {"redrive": "other"})


def test_an_unknown_execution_is_execution_not_found(machine: str) -> None:
    unknown = machine.replace(":stateMachine:", ":execution:") + ":never-started"
    with pytest.raises(ExecutionNotFoundError):
        stepfunctions.execution_status(unknown)


def test_a_missing_cluster_is_resource_not_found(cloud: Cloud) -> None:
    with pytest.raises(ResourceNotFoundError):
        ecs.running_tasks("arn:aws:ecs:us-east-1:123456789012:cluster/gone", "run-1")


def test_a_missing_parameter_is_parameter_not_found(cloud: Cloud) -> None:
    with pytest.raises(ParameterNotFoundError):
        ssm.get_parameter(stack.LOCAL_OUTPUTS_PARAMETER)


def test_a_missing_ledger_table_is_resource_not_found(cloud: Cloud) -> None:
    with pytest.raises(ResourceNotFoundError):
        Ledger("gone", 90).list_runs("yelp-business-scores")


def test_no_stack_of_that_name_is_stack_not_found(cloud: Cloud) -> None:
    with pytest.raises(stack.StackNotFoundError, match="no stack named 'stepburst'"):
        stack.from_cloudformation("stepburst")


def test_a_local_endpoint_with_no_stack_published_is_stack_not_found(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "use_local_endpoint", lambda endpoint: None)
    with pytest.raises(stack.StackNotFoundError, match="stepburst local up"):
        stack.from_local("http://127.0.0.1:4566")


def test_the_cli_stamps_records_with_the_stacks_ledger_retention(
    cloud: Cloud, machine: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outputs = {
        "InputBucketName": cloud.input_bucket,
        "OutputBucketName": cloud.output_bucket,
        "WorkBucketName": cloud.work_bucket,
        "LedgerTableName": cloud.table,
        "StateMachineArn": machine,
        "LedgerRetentionDays": "7",
    }
    boto3.client("ssm").put_parameter(
        Name=stack.LOCAL_OUTPUTS_PARAMETER, Value=json.dumps(outputs), Type="String"
    )
    monkeypatch.setattr(stack, "use_local_endpoint", lambda endpoint: None)
    operations = Operations(stack.from_local("http://127.0.0.1:4566"), JOBS_DIR)
    operations.ledger.create_run({"run_id": "r1", "job": "yelp-business-scores"})

    operations.cancel("r1")

    record = boto3.client("dynamodb").get_item(
        TableName=cloud.table, Key={"pk": {"S": "RUN#r1"}, "sk": {"S": "RUN"}}
    )["Item"]
    days_left = (int(record["expires_at"]["N"]) - time.time()) / 86400
    assert 6.9 < days_left <= 7
    assert record["status"]["S"] == "CANCELLED"


@pytest.mark.parametrize(
    ("retention", "problem"), [(None, "has no output"), ("ninety", "not a number")]
)
def test_a_stack_without_a_ledger_retention_is_refused(retention: str | None, problem: str) -> None:
    outputs = {name: "x" for name in stack.REQUIRED_OUTPUTS if name != "LedgerRetentionDays"}
    if retention is not None:
        outputs["LedgerRetentionDays"] = retention
    with pytest.raises(stack.StackNotFoundError, match="LedgerRetentionDays") as raised:
        stack.Stack("old", outputs).settings(JOBS_DIR)
    assert problem in str(raised.value)
