"""Where a deployment's resources are: a CloudFormation stack's outputs, or the local engine's.

``stepburst local up`` publishes the local stack's outputs in an SSM parameter of the local
AWS, so the CLI finds them with nothing but the endpoint, exactly as it reads a real stack's
outputs from CloudFormation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stepburst import aws
from stepburst.adapters import cloudformation, ssm
from stepburst.errors import AwsError, AwsUnavailableError, ResourceNotFoundError, StepburstError
from stepburst.settings import Settings

LOCAL_OUTPUTS_PARAMETER = "/stepburst/local/stack-outputs"
LOCAL_ENDPOINT = "http://127.0.0.1:4566"
LOCAL_REGION = "us-east-1"
REQUIRED_OUTPUTS = (
    "InputBucketName",
    "OutputBucketName",
    "WorkBucketName",
    "LedgerTableName",
    "StateMachineArn",
    "LedgerRetentionDays",
)


class StackNotFoundError(StepburstError):
    """The stack (or the local engine) is not there, or lacks an output the CLI needs."""


@dataclass(frozen=True, slots=True)
class Stack:
    name: str
    outputs: Mapping[str, str]

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise StackNotFoundError(f"stack {self.name!r} has no output {name}") from None

    def settings(self, jobs_dir: Path) -> Settings:
        return Settings(
            ledger_table=self.output("LedgerTableName"),
            input_bucket=self.output("InputBucketName"),
            output_bucket=self.output("OutputBucketName"),
            work_bucket=self.output("WorkBucketName"),
            jobs_dir=jobs_dir,
            event_bus_name="default",
            retention_days=self.retention_days(),
            # Per-job definitions are named after the CloudFormation stack (layout).
            stack_name=self.outputs.get("StackName") or self.name,
        )

    def retention_days(self) -> int:
        """Days the ledger keeps a record: the stack's LedgerRetentionDays parameter."""
        value = self.output("LedgerRetentionDays")
        try:
            return int(value)
        except ValueError:
            raise StackNotFoundError(
                f"stack {self.name!r} has output LedgerRetentionDays {value!r}, not a number"
            ) from None


def _checked(name: str, outputs: Mapping[str, str]) -> Stack:
    missing = [output for output in REQUIRED_OUTPUTS if output not in outputs]
    if missing:
        raise StackNotFoundError(f"stack {name!r} lacks outputs: {', '.join(missing)}")
    return Stack(name=name, outputs=dict(outputs))


def from_cloudformation(name: str) -> Stack:
    try:
        outputs = cloudformation.stack_outputs(name)
    except ResourceNotFoundError as error:
        raise StackNotFoundError(f"no stack named {name!r} in this region") from error
    return _checked(name, outputs)


def use_local_endpoint(endpoint: str) -> None:
    """Point every client of this process at the local engine, with stand-in credentials."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ["AWS_DEFAULT_REGION"] = os.environ.get("AWS_DEFAULT_REGION", LOCAL_REGION)
    aws.reset_clients()


def from_local(endpoint: str) -> Stack:
    use_local_endpoint(endpoint)
    try:
        published = ssm.get_parameter(LOCAL_OUTPUTS_PARAMETER)
    # Nothing listening, or something that is not a local engine with a stack deployed.
    except (AwsUnavailableError, AwsError) as error:
        raise StackNotFoundError(
            f"no local engine answers at {endpoint}: start one with `stepburst local up`"
        ) from error
    return _checked("local", json.loads(published))
