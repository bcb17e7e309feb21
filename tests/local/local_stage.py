"""The conformance tests' stage: a bare in-memory AWS with the engine's hooks, a test Lambda,
a stand-in worker, ECS, Batch and S3."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepburst_local.cloud import LocalCloud
from stepburst_local.compute import ContainerImage, FunctionSpec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDER = Path(__file__).resolve().parent / "recorder"
ACCOUNT = "123456789012"
REGION = "us-east-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:conformance-fn"
RECORDER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:conformance-recorder"
RECORD_BUCKET = "conformance-received"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/conformance"


@dataclass
class Stage:
    """The resources the conformance state machines use."""

    cloud: LocalCloud
    subnets: list[str]
    security_group: str
    cluster: str
    task_definition: str
    job_queue: str
    job_definition: str
    bucket: str

    def state_machine(self, definition: dict[str, Any]) -> str:
        name = f"sm-{time.time_ns():x}"
        return str(
            self.cloud.client("stepfunctions").create_state_machine(
                name=name, definition=json.dumps(definition), roleArn=ROLE_ARN
            )["stateMachineArn"]
        )

    def run(
        self, definition: dict[str, Any], execution_input: Any = None, timeout: float = 30
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        arn = self.cloud.start_state_machine(self.state_machine(definition), execution_input or {})
        described = self.cloud.wait_for_execution(arn, timeout=timeout)
        return described, self.cloud.history(arn)

    def ecs_parameters(self, command: list[str]) -> dict[str, Any]:
        return {
            "Cluster": self.cluster,
            "TaskDefinition": self.task_definition,
            "CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}],
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {
                    "Subnets": self.subnets,
                    "SecurityGroups": [self.security_group],
                    "AssignPublicIp": "DISABLED",
                }
            },
            "StartedBy": "conformance-run",
            "Overrides": {"ContainerOverrides": [{"Name": "worker", "Command": command}]},
        }

    def batch_parameters(self, command: list[str]) -> dict[str, Any]:
        return {
            "JobName": "conformance",
            "JobQueue": self.job_queue,
            "JobDefinition": self.job_definition,
            "ContainerOverrides": {"Command": command},
        }


def recorded(cloud: LocalCloud, key: str) -> list[Any]:
    """The events the recorder function received under ``key``, in the order it got them."""
    s3 = cloud.client("s3")
    listed = s3.list_objects_v2(Bucket=RECORD_BUCKET, Prefix=f"received/{key}/")
    return [
        json.loads(s3.get_object(Bucket=RECORD_BUCKET, Key=entry["Key"])["Body"].read())
        for entry in sorted(listed.get("Contents", []), key=lambda entry: entry["Key"])
    ]


def task_failures(history: list[dict[str, Any]]) -> list[str]:
    return [
        event["taskFailedEventDetails"]["error"]
        for event in history
        if event["type"] == "TaskFailed"
    ]


def create_stage(cloud: LocalCloud) -> Stage:
    ec2 = cloud.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="workers", Description="w", VpcId=vpc)["GroupId"]
    ecs = cloud.client("ecs")
    cluster = ecs.create_cluster(clusterName="conformance", capacityProviders=["FARGATE_SPOT"])
    task_definition = ecs.register_task_definition(
        family="conformance-worker",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "worker",
                "image": "worker:local",
                "essential": True,
                "environment": [{"name": "WORKER_MARKER", "value": "from-task-definition"}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    iam = cloud.client("iam")
    role = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    batch = cloud.client("batch")
    environment = batch.create_compute_environment(
        computeEnvironmentName="conformance",
        type="UNMANAGED",
        state="ENABLED",
        serviceRole=role,
    )["computeEnvironmentArn"]
    queue = batch.create_job_queue(
        jobQueueName="conformance",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
    )["jobQueueArn"]
    job_definition = batch.register_job_definition(
        jobDefinitionName="conformance-worker",
        type="container",
        containerProperties={
            "image": "worker:local",
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "512"},
            ],
            "environment": [{"name": "WORKER_MARKER", "value": "from-job-definition"}],
        },
    )["jobDefinitionArn"]
    cloud.client("s3").create_bucket(Bucket="conformance")
    cloud.client("s3").create_bucket(Bucket=RECORD_BUCKET)
    cloud.register_functions(
        [
            FunctionSpec(
                logical_id="ConformanceFunction",
                name="conformance-fn",
                arn=FUNCTION_ARN,
                code_dir=FIXTURES / "lambda_handlers",
                handler="app.lambda_handler",
                environment={"MARKER": "from-template"},
                timeout_seconds=1.0,
                memory_mb=512,
            ),
            FunctionSpec(
                logical_id="RecorderFunction",
                name="conformance-recorder",
                arn=RECORDER_ARN,
                code_dir=RECORDER,
                handler="app.lambda_handler",
                environment={"RECORD_BUCKET": RECORD_BUCKET},
                timeout_seconds=10.0,
            ),
        ]
    )
    cloud.configure_containers(
        ContainerImage(entrypoint=[sys.executable, str(FIXTURES / "containers" / "worker.py")]),
        {},
    )
    return Stage(
        cloud=cloud,
        subnets=[subnet],
        security_group=group,
        cluster=cluster["cluster"]["clusterArn"],
        task_definition=task_definition,
        job_queue=queue,
        job_definition=job_definition,
        bucket="conformance",
    )
