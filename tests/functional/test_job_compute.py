"""Each job's task definition, job definition and roles follow the job files: the custom
resource creates, updates and removes them in (in-memory) ECS, Batch and IAM."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from stepburst import components
from stepburst.adapters import batch as batch_adapter
from stepburst.operations import Operations
from stepburst.stack import Stack

from .batch_network import create_batch_network
from .conftest import JOBS_DIR, Cloud
from .handlers import invoke

pytestmark = pytest.mark.functional

STACK = "stepburst"
ACCOUNT = "123456789012"
WORKER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/stepburst-worker"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/stepburst-execution"
PROCESS_ITEMS_ROLE = f"arn:aws:iam::{ACCOUNT}:role/stepburst-process-items"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:triage/db-AbCdEf"

TRIAGE = """\
name: triage-experiment
description: A triage experiment on Batch EC2 Graviton, with its database password.
split:
  single: {}
run:
  command: triage --tb Ref::experiment_file --project-path {OUTPUT_PREFIX} Ref::replace
compute:
  platform: batch
  architecture: arm64
  cpu: 1024
  memory_mb: 16384
  storage_gb: 100
  image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/triage:3.3.0
  batch:
    capacity: ec2
    instance_types: [m7g, c7g.xlarge]
    spot: true
    gpus: 1
params:
  experiment_file: s3://experiments/simple.yaml
  replace: ""
access:
  read: ["s3://experiments/"]
  write: ["s3://shared-results/triage/"]
secrets:
  POSTGRES_PASSWORD: {secret}
  POSTGRES_USER: /triage/db-user
output:
  prefix: triage/
"""


@pytest.fixture
def responses() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for CloudFormation's pre-signed response URL."""
    received: list[dict[str, Any]] = []

    class Receive(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/response", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def network(cloud: Cloud) -> dict[str, Any]:
    return create_batch_network()


@pytest.fixture
def jobs(cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "jobs"
    shutil.copytree(JOBS_DIR, directory, ignore=shutil.ignore_patterns("__pycache__"))
    (directory / "triage-experiment.yaml").write_text(
        TRIAGE.replace("{secret}", SECRET), encoding="utf-8"
    )
    monkeypatch.setenv("STEPBURST_JOBS_DIR", str(directory))
    components.reset()
    return directory


def request(kind: str, url: str, network: dict[str, Any]) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/{STACK}/1",
        "RequestId": f"{kind}-1",
        "LogicalResourceId": "JobCompute",
        "ResourceType": "Custom::JobCompute",
        "ResourceProperties": {
            "ServiceToken": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:sync-job-compute",
            "StackName": STACK,
            "Partition": "aws",
            "Region": "us-east-1",
            "AccountId": ACCOUNT,
            "WorkerImage": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/worker:v1",
            "ExecutionRoleArn": EXECUTION_ROLE,
            "WorkerRoleArn": WORKER_ROLE,
            "TrustedRoleArns": [PROCESS_ITEMS_ROLE],
            "LogGroup": "/stepburst/stepburst/worker",
            "AssignPublicIp": "ENABLED",
            "InputBucket": "stepburst-input-example",
            "OutputBucket": "stepburst-output-example",
            "Environment": {"STEPBURST_LEDGER_TABLE": "ledger", "STEPBURST_STACK_NAME": STACK},
            **network,
        },
    }


def latest_task_definition(family: str) -> dict[str, Any]:
    described = boto3.client("ecs").describe_task_definition(
        taskDefinition=family, include=["TAGS"]
    )
    return {**described["taskDefinition"], "tags": described.get("tags", [])}


def active_job_definitions(name: str) -> list[dict[str, Any]]:
    found = boto3.client("batch").describe_job_definitions(jobDefinitionName=name, status="ACTIVE")[
        "jobDefinitions"
    ]
    return sorted(found, key=lambda definition: definition["revision"])


def active_task_definitions(family: str) -> list[str]:
    arns = boto3.client("ecs").list_task_definitions(familyPrefix=family, status="ACTIVE")
    return [arn for arn in arns["taskDefinitionArns"] if f"/{family}:" in arn]


def role_names() -> set[str]:
    roles = boto3.client("iam").list_roles(PathPrefix=f"/stepburst/{STACK}/")["Roles"]
    return {role["RoleName"] for role in roles}


def policy(role: str, name: str) -> dict[str, Any]:
    document = boto3.client("iam").get_role_policy(RoleName=role, PolicyName=name)
    loaded = document["PolicyDocument"]
    return json.loads(loaded) if isinstance(loaded, str) else dict(loaded)


def test_each_job_gets_its_definitions_and_roles(
    jobs: Path, responses: tuple[str, list[dict[str, Any]]], network: dict[str, Any]
) -> None:
    url, received = responses
    invoke("sync_job_compute", request("Create", url, network))
    assert received[-1]["Status"] == "SUCCESS", received[-1].get("Reason")
    names = {path.stem for path in jobs.glob("*.yaml")}
    assert role_names() == {f"{STACK}-job-{name}" for name in names} | {
        f"{STACK}-job-triage-experiment_exec"
    }

    # A platform: batch job runs on Batch only; the others on ECS (and Lambda).
    assert active_task_definitions(f"{STACK}-job-triage-experiment") == []
    task = latest_task_definition(f"{STACK}-job-dam-periods")
    (container,) = task["containerDefinitions"]
    assert task["runtimePlatform"]["cpuArchitecture"] == "X86_64"
    assert container["image"].endswith("/worker:v1")
    assert container["entryPoint"] == ["python", "-m", "stepburst.worker"]
    assert "secrets" not in container
    assert task["taskRoleArn"] == WORKER_ROLE
    assert task["executionRoleArn"] == EXECUTION_ROLE
    assert active_job_definitions(f"{STACK}-job-dam-periods") == []

    (job_definition,) = active_job_definitions(f"{STACK}-job-triage-experiment")
    properties = job_definition["containerProperties"]
    assert job_definition["platformCapabilities"] == ["EC2"]
    assert job_definition["parameters"] == {"experiment_file": "s3://experiments/simple.yaml"}
    assert properties["image"].endswith("/triage:3.3.0")
    assert {r["type"]: r["value"] for r in properties["resourceRequirements"]} == {
        "VCPU": "1",
        "MEMORY": "16384",
        "GPU": "1",
    }
    assert "Ref::run" in properties["command"]
    assert {secret["name"]: secret["valueFrom"] for secret in properties["secrets"]} == {
        "POSTGRES_PASSWORD": SECRET,
        "POSTGRES_USER": "/triage/db-user",
    }
    assert properties["jobRoleArn"] == WORKER_ROLE
    assert properties["executionRoleArn"].endswith(f"/{STACK}-job-triage-experiment_exec")
    environment = {pair["name"]: pair["value"] for pair in properties["environment"]}
    assert environment["STEPBURST_JOB_ROLE_ARN"] == (
        f"arn:aws:iam::{ACCOUNT}:role/stepburst/{STACK}/{STACK}-job-triage-experiment"
    )

    access = policy(f"{STACK}-job-triage-experiment", "job-access")
    grants = {statement["Sid"]: statement for statement in access["Statement"]}
    assert grants["ReadDeclaredLocations"]["Resource"] == ["arn:aws:s3:::experiments/*"]
    assert grants["WriteDeclaredLocations"]["Resource"] == [
        "arn:aws:s3:::stepburst-output-example/triage/*",
        "arn:aws:s3:::shared-results/triage/*",
    ]
    assert grants["ReadDeclaredSecrets"]["Resource"] == [SECRET]
    assert grants["ReadDeclaredParameters"]["Resource"] == [
        f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/triage/db-user"
    ]
    # Nothing of the ledger, the work bucket or other jobs' outputs.
    text = json.dumps(access)
    assert "dynamodb" not in text
    assert "stepburst-work-example" not in text
    assert "stepburst-output-example/*" not in text
    execution = policy(f"{STACK}-job-triage-experiment_exec", "job-secrets")
    secret_grants = [
        s for s in execution["Statement"] if "Secret" in s["Sid"] or "Param" in s["Sid"]
    ]
    assert {arn for s in secret_grants for arn in s["Resource"]} == {
        SECRET,
        f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/triage/db-user",
    }
    trust = boto3.client("iam").get_role(RoleName=f"{STACK}-job-triage-experiment")["Role"]
    principals = trust["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"]
    assert sorted(principals) == sorted([WORKER_ROLE, PROCESS_ITEMS_ROLE])


def test_a_changed_job_gets_a_new_revision_and_a_removed_one_loses_everything(
    jobs: Path, responses: tuple[str, list[dict[str, Any]]], network: dict[str, Any]
) -> None:
    url, received = responses
    invoke("sync_job_compute", request("Create", url, network))
    invoke("sync_job_compute", request("Update", url, network))
    assert received[-1]["Data"]["Created"] == ""
    assert f"job-definition/{STACK}-job-triage-experiment" in received[-1]["Data"]["Unchanged"]
    assert f"task-definition/{STACK}-job-dam-periods" in received[-1]["Data"]["Unchanged"]

    spec = jobs / "triage-experiment.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace("memory_mb: 16384", "memory_mb: 32768"), "utf-8"
    )
    invoke("sync_job_compute", request("Update", url, network))
    assert f"job-definition/{STACK}-job-triage-experiment" in received[-1]["Data"]["Updated"]
    (revision,) = active_job_definitions(f"{STACK}-job-triage-experiment")
    assert revision["revision"] == 2
    assert {r["type"]: r["value"] for r in revision["containerProperties"]["resourceRequirements"]}[
        "MEMORY"
    ] == "32768"

    spec.unlink()
    invoke("sync_job_compute", request("Update", url, network))
    assert received[-1]["Status"] == "SUCCESS"
    assert active_job_definitions(f"{STACK}-job-triage-experiment") == []
    assert f"{STACK}-job-triage-experiment" not in role_names()
    assert f"{STACK}-job-triage-experiment_exec" not in role_names()
    assert len(active_task_definitions(f"{STACK}-job-dam-periods")) == 1


def test_deleting_the_stack_removes_every_definition_and_role(
    jobs: Path, responses: tuple[str, list[dict[str, Any]]], network: dict[str, Any]
) -> None:
    url, received = responses
    invoke("sync_job_compute", request("Create", url, network))
    invoke("sync_job_compute", request("Delete", url, network))
    assert received[-1]["Status"] == "SUCCESS"
    assert role_names() == set()
    assert active_task_definitions(f"{STACK}-job-dam-periods") == []
    assert active_job_definitions(f"{STACK}-job-triage-experiment") == []


def test_an_invalid_job_file_fails_the_deploy_naming_the_field(
    jobs: Path, responses: tuple[str, list[dict[str, Any]]], network: dict[str, Any]
) -> None:
    url, received = responses
    spec = jobs / "triage-experiment.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace("capacity: ec2", "capacity: fargate"), "utf-8"
    )
    invoke("sync_job_compute", request("Update", url, network))
    assert received[-1]["Status"] == "FAILED"
    assert "triage-experiment.yaml: compute.memory_mb" in received[-1]["Reason"]


# -- a job's own machines ------------------------------------------------------------------

TRIAGE_MACHINES = f"{STACK}-job-triage-experiment"


def environment(name: str) -> dict[str, Any] | None:
    found = boto3.client("batch").describe_compute_environments(computeEnvironments=[name])
    return next(iter(found["computeEnvironments"]), None)


def queue(name: str) -> dict[str, Any] | None:
    found = boto3.client("batch").describe_job_queues(jobQueues=[name])["jobQueues"]
    return next(iter(found), None)


def launch_template_versions(name: str) -> list[dict[str, Any]]:
    ec2 = boto3.client("ec2")
    names = {t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]}
    if name not in names:
        return []
    versions = ec2.describe_launch_template_versions(LaunchTemplateName=name)
    return sorted(versions["LaunchTemplateVersions"], key=lambda v: v["VersionNumber"])


def test_a_job_with_instance_types_and_a_disk_gets_its_own_environment_and_queue(
    jobs: Path, responses: tuple[str, list[dict[str, Any]]], network: dict[str, Any]
) -> None:
    url, received = responses
    invoke("sync_job_compute", request("Create", url, network))
    assert received[-1]["Status"] == "SUCCESS", received[-1].get("Reason")

    described = environment(TRIAGE_MACHINES)
    assert described is not None
    assert described["type"] == "MANAGED"
    assert described["state"] == "ENABLED"
    assert described["serviceRole"].endswith("/AWSServiceRoleForBatch")
    resources = described["computeResources"]
    assert resources["type"] == "SPOT"
    assert resources["allocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert resources["instanceTypes"] == ["m7g", "c7g.xlarge"]
    assert resources["minvCpus"] == 0
    assert resources["maxvCpus"] == 64
    assert resources["subnets"] == network["Subnets"]
    assert resources["securityGroupIds"] == network["SecurityGroupIds"]
    assert resources["instanceRole"] == network["InstanceProfileArn"]
    assert resources["launchTemplate"] == {"launchTemplateName": TRIAGE_MACHINES, "version": "1"}
    (version,) = launch_template_versions(TRIAGE_MACHINES)
    (root,) = version["LaunchTemplateData"]["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"
    assert root["Ebs"]["VolumeSize"] == 100
    assert root["Ebs"]["VolumeType"] == "gp3"
    own = queue(TRIAGE_MACHINES)
    assert own is not None
    assert own["state"] == "ENABLED"
    assert [
        entry["computeEnvironment"].rsplit("/", 1)[-1] for entry in own["computeEnvironmentOrder"]
    ] == [TRIAGE_MACHINES]
    # Jobs that declare neither keep the stack's shared queues: nothing of their own.
    assert environment(f"{STACK}-job-dam-periods") is None
    assert queue(f"{STACK}-job-dam-periods") is None

    invoke("sync_job_compute", request("Update", url, network))
    data = received[-1]["Data"]
    assert data["Created"] == ""
    assert f"launch-template/{TRIAGE_MACHINES}" in data["Unchanged"]
    assert f"job-queue/{TRIAGE_MACHINES}" in data["Unchanged"]


def test_a_changed_disk_gets_a_new_template_version_and_a_removed_job_loses_its_machines(
    jobs: Path, responses: tuple[str, list[dict[str, Any]]], network: dict[str, Any]
) -> None:
    url, received = responses
    invoke("sync_job_compute", request("Create", url, network))
    spec = jobs / "triage-experiment.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace("storage_gb: 100", "storage_gb: 250"), "utf-8"
    )
    invoke("sync_job_compute", request("Update", url, network))
    assert received[-1]["Status"] == "SUCCESS", received[-1].get("Reason")
    versions = launch_template_versions(TRIAGE_MACHINES)
    assert [v["VersionNumber"] for v in versions] == [1, 2]
    assert versions[-1]["LaunchTemplateData"]["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 250
    # The environment moves to the new version in place (an infrastructure update).
    assert f"compute-environment/{TRIAGE_MACHINES}" in received[-1]["Data"]["Updated"]

    spec.unlink()
    invoke("sync_job_compute", request("Update", url, network))
    assert received[-1]["Status"] == "SUCCESS", received[-1].get("Reason")
    assert queue(TRIAGE_MACHINES) is None
    assert environment(TRIAGE_MACHINES) is None
    assert launch_template_versions(TRIAGE_MACHINES) == []
    deleted = received[-1]["Data"]["Deleted"].split(",")
    assert {
        f"job-queue/{TRIAGE_MACHINES}",
        f"compute-environment/{TRIAGE_MACHINES}",
        f"launch-template/{TRIAGE_MACHINES}",
    } <= set(deleted)


def test_an_environment_that_cannot_be_updated_in_place_is_replaced(
    jobs: Path, responses: tuple[str, list[dict[str, Any]]], network: dict[str, Any]
) -> None:
    url, received = responses
    batch = boto3.client("batch")
    # Made by hand before: BEST_FIT takes no infrastructure update, so Batch needs a new one.
    role = boto3.client("iam").create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")
    batch.create_compute_environment(
        computeEnvironmentName=TRIAGE_MACHINES,
        type="MANAGED",
        state="ENABLED",
        serviceRole=role["Role"]["Arn"],
        computeResources={
            "type": "EC2",
            "allocationStrategy": "BEST_FIT",
            "minvCpus": 0,
            "maxvCpus": 16,
            "instanceTypes": ["m6g"],
            "subnets": network["Subnets"],
            "securityGroupIds": network["SecurityGroupIds"],
            "instanceRole": network["InstanceProfileArn"],
        },
    )
    batch.create_job_queue(
        jobQueueName=TRIAGE_MACHINES,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": TRIAGE_MACHINES}],
    )

    invoke("sync_job_compute", request("Update", url, network))
    assert received[-1]["Status"] == "SUCCESS", received[-1].get("Reason")
    assert environment(TRIAGE_MACHINES) is None
    own = queue(TRIAGE_MACHINES)
    assert own is not None
    (entry,) = own["computeEnvironmentOrder"]
    replacement = entry["computeEnvironment"].rsplit("/", 1)[-1]
    assert replacement.startswith(f"{TRIAGE_MACHINES}-")
    described = environment(replacement)
    assert described is not None
    assert described["computeResources"]["instanceTypes"] == ["m7g", "c7g.xlarge"]
    assert f"compute-environment/{TRIAGE_MACHINES}" in received[-1]["Data"]["Deleted"]

    # The replacement is the job's from now on: the next deploy keeps it as it is.
    invoke("sync_job_compute", request("Update", url, network))
    assert f"compute-environment/{replacement}" in received[-1]["Data"]["Unchanged"].split(",")
    assert environment(replacement) is not None


def test_deleting_the_stack_removes_the_jobs_own_machines(
    jobs: Path, responses: tuple[str, list[dict[str, Any]]], network: dict[str, Any]
) -> None:
    url, received = responses
    invoke("sync_job_compute", request("Create", url, network))
    invoke("sync_job_compute", request("Delete", url, network))
    assert received[-1]["Status"] == "SUCCESS", received[-1].get("Reason")
    assert queue(TRIAGE_MACHINES) is None
    assert environment(TRIAGE_MACHINES) is None
    assert launch_template_versions(TRIAGE_MACHINES) == []


def test_cancel_looks_for_a_runs_batch_jobs_in_its_jobs_own_queue(
    jobs: Path,
    responses: tuple[str, list[dict[str, Any]]],
    network: dict[str, Any],
    cloud: Cloud,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = responses
    invoke("sync_job_compute", request("Create", url, network))
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="coordinator",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn",
    )
    outputs = {
        "InputBucketName": cloud.input_bucket,
        "OutputBucketName": cloud.output_bucket,
        "WorkBucketName": cloud.work_bucket,
        "LedgerTableName": cloud.table,
        "StateMachineArn": machine["stateMachineArn"],
        "LedgerRetentionDays": "30",
        "StackName": STACK,
        "WorkerJobQueueArns": "shared-fargate,shared-ec2",
    }
    operations = Operations(Stack(STACK, outputs), jobs)
    asked: list[str] = []

    def unfinished(queue: str, named: Any) -> list[str]:
        asked.append(queue)
        return []

    monkeypatch.setattr(batch_adapter, "unfinished_jobs", unfinished)
    for job, run_id in (("triage-experiment", "triage-run"), ("dam-periods", "dam-run")):
        execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=run_id)
        operations.ledger.create_run(
            {
                "run_id": run_id,
                "job": job,
                "status": "RUNNING",
                "started_at": "2026-01-01T00:00:00Z",
                "execution_id": execution["executionArn"],
            }
        )
    operations.cancel("triage-run")
    assert asked == ["shared-fargate", "shared-ec2", TRIAGE_MACHINES]
    asked.clear()
    # A job without its own machines has no queue of its own to look in.
    operations.cancel("dam-run")
    assert asked == ["shared-fargate", "shared-ec2"]
