"""Per-job compute on the local engine: jobs of both architectures, Fargate and Batch on EC2,
in one stack, each on the definitions the deploy made for it, its command run with its role."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from scenario_support import ROOT, run_job

from stepburst_local import LocalEngine

pytestmark = pytest.mark.statemachine

STACK = "stepburst-local"
# What the job's command saw: its arguments and who it runs as.
PROBE = """\
import json
import sys

import boto3

caller = boto3.client("sts").get_caller_identity()["Arn"]
print(json.dumps({"argv": sys.argv[1:], "caller": caller}))
"""
COMMAND = "python -m probe --tb Ref::experiment_file Ref::replace Ref::never_declared {ITEM}"
ARM_BATCH_EC2 = f"""\
name: arm-batch-ec2
split:
  items: {{}}
run:
  command: {COMMAND}
compute:
  platform: batch
  architecture: arm64
  cpu: 1024
  memory_mb: 16384
  batch:
    capacity: ec2
    instance_types: [m7g]
    spot: true
params:
  experiment_file: s3://experiments/simple.yaml
  replace: ""
retries: 0
output:
  prefix: arm/
"""
X86_ECS = f"""\
name: x86-ecs
split:
  items: {{}}
run:
  command: {COMMAND}
compute:
  platform: ecs
  cpu: 256
  memory_mb: 512
  storage_gb: 30
params:
  experiment_file: s3://experiments/other.yaml
  replace: --replace
retries: 0
output:
  prefix: x86/
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEngine]:
    jobs = tmp_path_factory.mktemp("jobs")
    (jobs / "probe.py").write_text(PROBE, encoding="utf-8")
    (jobs / "arm-batch-ec2.yaml").write_text(ARM_BATCH_EC2, encoding="utf-8")
    (jobs / "x86-ecs.yaml").write_text(X86_ECS, encoding="utf-8")
    with LocalEngine(ROOT, jobs_dir=jobs, time_scale=0.01, quiet=True) as running:
        yield running


def seen(item: dict[str, Any]) -> dict[str, Any]:
    tail = str(item["output_tail"]).strip().splitlines()[-1]
    loaded: dict[str, Any] = json.loads(tail)
    return loaded


def test_an_arm64_batch_ec2_job_and_an_x86_64_ecs_job_run_in_one_stack(
    engine: LocalEngine,
) -> None:
    arm = run_job(engine, "arm-batch-ec2", ["item-0"])
    x86 = run_job(engine, "x86-ecs", ["item-0"])

    assert arm.status == "SUCCEEDED", arm.items
    assert x86.status == "SUCCEEDED", x86.items
    assert arm.item(0)["route"] == "batch"
    assert x86.item(0)["route"] == "ecs"

    batch = engine.client("batch")
    # It declares instance types: it runs on its own queue and compute environment.
    (job,) = batch.list_jobs(jobQueue=f"{STACK}-job-arm-batch-ec2", jobStatus="SUCCEEDED")[
        "jobSummaryList"
    ]
    (described,) = batch.describe_jobs(jobs=[job["jobId"]])["jobs"]
    assert described["jobDefinition"].split("/")[-1].startswith(f"{STACK}-job-arm-batch-ec2:")
    (definition,) = batch.describe_job_definitions(jobDefinitions=[described["jobDefinition"]])[
        "jobDefinitions"
    ]
    assert definition["platformCapabilities"] == ["EC2"]

    ecs = engine.client("ecs")
    task = ecs.describe_task_definition(taskDefinition=f"{STACK}-job-x86-ecs")["taskDefinition"]
    assert task["runtimePlatform"]["cpuArchitecture"] == "X86_64"
    assert task["ephemeralStorage"] == {"sizeInGiB": 30}
    assert definition["containerProperties"]["resourceRequirements"] == [
        {"type": "VCPU", "value": "1"},
        {"type": "MEMORY", "value": "16384"},
    ]


def test_batch_parameters_fill_the_command_and_empty_ones_are_left_out(
    engine: LocalEngine,
) -> None:
    arm = run_job(engine, "arm-batch-ec2", ["item-7"])
    x86 = run_job(engine, "x86-ecs", ["item-8"])

    assert seen(arm.item(0))["argv"] == ["--tb", "s3://experiments/simple.yaml", "item-7"]
    assert seen(x86.item(0))["argv"] == [
        "--tb",
        "s3://experiments/other.yaml",
        "--replace",
        "item-8",
    ]


def test_a_jobs_command_runs_with_the_jobs_own_role(engine: LocalEngine) -> None:
    arm = run_job(engine, "arm-batch-ec2", ["item-1"])
    caller = seen(arm.item(0))["caller"]
    assert f":assumed-role/{STACK}-job-arm-batch-ec2/" in caller
