"""A Batch-on-EC2 job with instance types and a disk size on the local engine: the deploy gives
it its own compute environment, launch template and queue, its item runs on that queue, and
removing the job file removes them all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scenario_support import ROOT, run_job

from stepburst_local import LocalEngine

pytestmark = pytest.mark.statemachine

STACK = "stepburst-local"
JOB = "big-disk"
OWN = f"{STACK}-job-{JOB}"
SPEC = """\
name: big-disk
split:
  items: {}
run:
  command: python -c "print('ran {ITEM}')"
compute:
  platform: batch
  cpu: 2048
  memory_mb: 8192
  storage_gb: 500
  batch:
    capacity: ec2
    instance_types: [c6i.2xlarge, m6i]
    spot: false
retries: 0
output:
  prefix: big-disk/
"""


# Another job with its own machines (a disk size only): it stays when big-disk goes.
SLOW = "slow-disk"
SLOW_SPEC = """\
name: slow-disk
split:
  items: {}
run:
  command: python -c "print('slow')"
compute:
  platform: batch
  cpu: 1024
  memory_mb: 4096
  storage_gb: 80
  batch:
    capacity: ec2
    spot: true
retries: 0
output:
  prefix: slow-disk/
"""


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("jobs")
    (directory / f"{JOB}.yaml").write_text(SPEC, encoding="utf-8")
    (directory / f"{SLOW}.yaml").write_text(SLOW_SPEC, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def engine(jobs: Path) -> Iterator[LocalEngine]:
    with LocalEngine(ROOT, jobs_dir=jobs, time_scale=0.01, quiet=True) as running:
        yield running


def environment(engine: LocalEngine, name: str) -> dict[str, Any] | None:
    found = engine.client("batch").describe_compute_environments(computeEnvironments=[name])
    return next(iter(found["computeEnvironments"]), None)


def queue(engine: LocalEngine, name: str) -> dict[str, Any] | None:
    found = engine.client("batch").describe_job_queues(jobQueues=[name])["jobQueues"]
    return next(iter(found), None)


def launch_templates(engine: LocalEngine) -> dict[str, int]:
    described = engine.client("ec2").describe_launch_templates()["LaunchTemplates"]
    return {t["LaunchTemplateName"]: t["LatestVersionNumber"] for t in described}


def test_the_job_gets_its_machines_runs_on_them_and_loses_them_with_its_file(
    engine: LocalEngine, jobs: Path
) -> None:
    described = environment(engine, OWN)
    assert described is not None
    assert described["status"] == "VALID"
    resources = described["computeResources"]
    assert resources["instanceTypes"] == ["c6i.2xlarge", "m6i"]
    assert resources["type"] == "EC2"
    assert resources["allocationStrategy"] == "BEST_FIT_PROGRESSIVE"
    assert resources["minvCpus"] == 0
    # The stack's network and instance profile, as the shared EC2 environments have them.
    (shared,) = [
        found
        for found in engine.client("batch").describe_compute_environments()["computeEnvironments"]
        if "WorkerEc2OnDemandX86" in found["computeEnvironmentName"]
    ]
    assert resources["subnets"] == shared["computeResources"]["subnets"]
    assert resources["securityGroupIds"] == shared["computeResources"]["securityGroupIds"]
    assert resources["instanceRole"] == shared["computeResources"]["instanceRole"]
    template = resources["launchTemplate"]
    assert template["launchTemplateName"] == OWN
    (version,) = engine.client("ec2").describe_launch_template_versions(
        LaunchTemplateName=OWN, Versions=[template["version"]]
    )["LaunchTemplateVersions"]
    (root,) = version["LaunchTemplateData"]["BlockDeviceMappings"]
    assert (root["DeviceName"], root["Ebs"]["VolumeSize"], root["Ebs"]["VolumeType"]) == (
        "/dev/xvda",
        500,
        "gp3",
    )
    own = queue(engine, OWN)
    assert own is not None
    assert own["state"] == "ENABLED"

    run = run_job(engine, JOB, ["item-0"])
    assert run.status == "SUCCEEDED", run.items
    assert run.item(0)["route"] == "batch"
    (submitted,) = engine.client("batch").list_jobs(jobQueue=OWN, jobStatus="SUCCEEDED")[
        "jobSummaryList"
    ]
    assert submitted["jobName"].startswith(run.run_id)

    (jobs / f"{JOB}.yaml").unlink()
    engine.run_custom_resources("Update")
    assert queue(engine, OWN) is None
    assert environment(engine, OWN) is None
    assert OWN not in launch_templates(engine)
    # Only the removed job's machines go.
    assert queue(engine, f"{STACK}-job-{SLOW}") is not None
    assert f"{STACK}-job-{SLOW}" in launch_templates(engine)


def test_a_job_with_only_a_disk_gets_the_shared_types_of_its_architecture_on_spot(
    engine: LocalEngine,
) -> None:
    slow = f"{STACK}-job-{SLOW}"
    described = environment(engine, slow)
    assert described is not None
    resources = described["computeResources"]
    assert (resources["type"], resources["allocationStrategy"]) == (
        "SPOT",
        "SPOT_PRICE_CAPACITY_OPTIMIZED",
    )
    assert resources["instanceTypes"] == ["optimal", "g5", "g6"]
    assert resources["launchTemplate"]["launchTemplateName"] == slow
