"""The requests a job's own Batch machines are built from, and what a change to them needs."""

from __future__ import annotations

from typing import Any

import pytest

from stepburst import machine_sync
from stepburst.job_compute import StackCompute, SyncResult
from stepburst.job_machines import (
    compute_environment_request,
    compute_resources,
    environment_change,
    has_own_machines,
    job_queue_request,
    launch_template_data,
    service_linked_role_arn,
)
from stepburst.jobs import Job, parse_job
from stepburst.layout import item_sort_key
from stepburst.machine_sync import MachinesNotSettledError, Waiting, wait_for
from stepburst.manifest import Item
from stepburst.planning import build_units

pytestmark = pytest.mark.unit

PROFILE = "arn:aws:iam::123456789012:instance-profile/sb-BatchInstanceProfile"
STACK = StackCompute(
    stack="sb",
    partition="aws",
    region="us-east-1",
    account="123456789012",
    worker_image="worker:v1",
    execution_role_arn="arn:aws:iam::123456789012:role/exec",
    worker_role_arn="arn:aws:iam::123456789012:role/worker",
    log_group="/sb/workers",
    assign_public_ip="ENABLED",
    input_bucket="in",
    output_bucket="out",
    environment={},
    subnets=["subnet-b", "subnet-a"],
    security_group_ids=["sg-1"],
    instance_profile_arn=PROFILE,
    max_vcpus=128,
)


def job(compute: dict[str, Any]) -> Job:
    document = {
        "name": "triage",
        "split": {"items": {}},
        "run": {"command": "triage"},
        "output": {"prefix": "triage/"},
        "compute": {"platform": "batch", "cpu": 1024, "memory_mb": 16384, **compute},
    }
    return parse_job(document, "triage.yaml")


def ec2(**batch: Any) -> dict[str, Any]:
    return {"batch": {"capacity": "ec2", **batch}}


def test_only_ec2_jobs_with_instance_types_or_a_disk_have_their_own_machines() -> None:
    assert has_own_machines(job(ec2(instance_types=["c6i"])))
    assert has_own_machines(job({**ec2(), "storage_gb": 300}))
    assert not has_own_machines(job(ec2(spot=True)))
    assert not has_own_machines(job({"cpu": 1024, "memory_mb": 2048, "storage_gb": 50}))


def test_spot_jobs_get_spot_price_capacity_optimized_and_on_demand_best_fit_progressive() -> None:
    spot = compute_resources(STACK, job(ec2(instance_types=["c6i"], spot=True)), None)
    on_demand = compute_resources(STACK, job(ec2(instance_types=["c6i"], spot=False)), None)
    assert (spot["type"], spot["allocationStrategy"]) == ("SPOT", "SPOT_PRICE_CAPACITY_OPTIMIZED")
    assert (on_demand["type"], on_demand["allocationStrategy"]) == ("EC2", "BEST_FIT_PROGRESSIVE")
    assert spot["minvCpus"] == 0
    assert spot["maxvCpus"] == 128
    assert spot["instanceTypes"] == ["c6i"]
    assert spot["subnets"] == ["subnet-b", "subnet-a"]
    assert spot["securityGroupIds"] == ["sg-1"]
    assert spot["instanceRole"] == PROFILE
    assert "launchTemplate" not in spot


def test_a_disk_without_instance_types_takes_the_shared_types_of_its_architecture() -> None:
    arm = job({**ec2(), "architecture": "arm64", "storage_gb": 300})
    x86 = job({**ec2(), "storage_gb": 300})
    assert compute_resources(STACK, arm, None)["instanceTypes"][0] == "m7g"
    assert compute_resources(STACK, x86, ("sb-job-triage", 3))["launchTemplate"] == {
        "launchTemplateName": "sb-job-triage",
        "version": "3",
    }


def test_the_launch_template_gives_a_gp3_root_volume_of_the_jobs_size() -> None:
    data = launch_template_data(job({**ec2(instance_types=["c6i"]), "storage_gb": 750}))
    assert data is not None
    (root,) = data["BlockDeviceMappings"]
    assert root == {
        "DeviceName": "/dev/xvda",
        "Ebs": {
            "VolumeSize": 750,
            "VolumeType": "gp3",
            "Encrypted": True,
            "DeleteOnTermination": True,
        },
    }
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert launch_template_data(job(ec2(instance_types=["c6i"]))) is None


def test_the_environment_and_queue_requests() -> None:
    triage = job(ec2(instance_types=["c6i"]))
    resources = compute_resources(STACK, triage, None)
    request = compute_environment_request(STACK, triage, "sb-job-triage", resources)
    assert request["type"] == "MANAGED"
    assert request["serviceRole"] == (
        "arn:aws:iam::123456789012:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch"
    )
    assert request["tags"] == {"stepburst:stack": "sb", "stepburst:job": "triage"}
    queue = job_queue_request(STACK, triage, "arn:aws:batch:::compute-environment/sb-job-triage")
    assert queue["jobQueueName"] == "sb-job-triage"
    assert queue["computeEnvironmentOrder"] == [
        {"order": 1, "computeEnvironment": "arn:aws:batch:::compute-environment/sb-job-triage"}
    ]


def test_a_job_without_the_stacks_network_fails_naming_the_properties() -> None:
    without = StackCompute(
        stack="sb",
        partition="aws",
        region="us-east-1",
        account="123456789012",
        worker_image="w",
        execution_role_arn="e",
        worker_role_arn="w",
        log_group="l",
        assign_public_ip="ENABLED",
        input_bucket="i",
        output_bucket="o",
        environment={},
    )
    with pytest.raises(ValueError, match="Subnets, SecurityGroupIds and InstanceProfileArn"):
        compute_resources(without, job(ec2(instance_types=["c6i"])), None)


def described(resources: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "type": "MANAGED",
        "serviceRole": service_linked_role_arn(STACK),
        "computeResources": {**resources, "desiredvCpus": 0, **changes},
    }


def test_an_unchanged_environment_needs_nothing_whatever_the_order_of_its_lists() -> None:
    wanted = compute_resources(STACK, job(ec2(instance_types=["c6i", "m6i"])), ("sb-job-t", 1))
    current = described(
        wanted,
        instanceTypes=["m6i", "c6i"],
        subnets=["subnet-a", "subnet-b"],
        launchTemplate={"launchTemplateName": "sb-job-t", "version": "1", "launchTemplateId": ""},
    )
    assert environment_change(current, wanted, service_linked_role_arn(STACK)).kind == "unchanged"


def test_changed_instance_types_purchase_or_disk_update_in_place_with_only_those_fields() -> None:
    before = compute_resources(STACK, job(ec2(instance_types=["c6i"], spot=True)), ("lt", 1))
    after = compute_resources(STACK, job(ec2(instance_types=["c7i"], spot=False)), ("lt", 2))
    change = environment_change(described(before), after, service_linked_role_arn(STACK))
    assert change.kind == "update"
    assert change.resources == {
        "type": "EC2",
        "allocationStrategy": "BEST_FIT_PROGRESSIVE",
        "instanceTypes": ["c7i"],
        "launchTemplate": {"launchTemplateName": "lt", "version": "2"},
    }


def test_a_dropped_disk_takes_the_launch_template_off() -> None:
    before = compute_resources(STACK, job(ec2(instance_types=["c6i"])), ("lt", 1))
    after = compute_resources(STACK, job(ec2(instance_types=["c6i"])), None)
    change = environment_change(described(before), after, service_linked_role_arn(STACK))
    assert change.resources == {"launchTemplate": {"launchTemplateName": ""}}


@pytest.mark.parametrize(
    ("current", "reason"),
    [
        ({"computeResources": {"allocationStrategy": "BEST_FIT"}}, "allocation strategy"),
        ({"serviceRole": "arn:aws:iam::123456789012:role/batch"}, "service-linked"),
        ({"type": "UNMANAGED"}, "not a managed EC2"),
        ({"computeResources": {"type": "FARGATE"}}, "not a managed EC2"),
    ],
)
def test_an_environment_without_infrastructure_updates_is_replaced(
    current: dict[str, Any], reason: str
) -> None:
    wanted = compute_resources(STACK, job(ec2(instance_types=["c6i"])), None)
    base = described(wanted)
    merged = {
        **base,
        **current,
        "computeResources": {**base["computeResources"], **current.get("computeResources", {})},
    }
    change = environment_change(merged, wanted, service_linked_role_arn(STACK))
    assert change.kind == "replace"
    assert reason in change.reason


def test_units_of_a_job_with_its_own_machines_name_its_own_queue() -> None:
    items = [Item(index=0, sk=item_sort_key(0), estimated_seconds=900, value="a")]
    (own,) = build_units(job(ec2(instance_types=["c6i"], spot=True)), items, stack="sb")
    assert own.batch.job_queue == "sb-job-triage"
    assert own.batch.on_demand_queue == "sb-job-triage"
    (shared,) = build_units(job(ec2(spot=True)), items, stack="sb")
    assert shared.batch.job_queue == "sb-ec2-spot-x86-64"


def test_waiting_stops_at_invalid_and_at_the_deadline() -> None:
    with pytest.raises(MachinesNotSettledError, match="INVALID: no subnets"):
        wait_for(
            lambda: {"status": "INVALID", "statusReason": "no subnets"},
            lambda found: False,
            "compute environment x",
            Waiting(deadline_seconds=5, interval_seconds=0),
        )
    looks: list[int] = []

    def creating() -> dict[str, Any]:
        looks.append(1)
        return {"status": "CREATING", "state": "ENABLED"}

    with pytest.raises(MachinesNotSettledError, match=r"still CREATING/ENABLED after 0\.05 s"):
        wait_for(
            creating,
            lambda found: False,
            "compute environment x",
            Waiting(deadline_seconds=0.05, interval_seconds=0.01),
        )
    assert len(looks) >= 2


def test_waiting_returns_once_settled() -> None:
    states = iter([None, {"status": "CREATING"}, {"status": "VALID", "state": "ENABLED"}])
    wait_for(
        lambda: next(states),
        lambda found: found is not None and found.get("status") == "VALID",
        "compute environment x",
        Waiting(deadline_seconds=5, interval_seconds=0),
    )


def test_an_environment_still_updating_is_waited_for_before_it_is_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    triage = job(ec2(instance_types=["c7i"]))
    wanted = compute_resources(STACK, triage, None)
    environment = {
        **described(wanted, instanceTypes=["c6i"]),
        "computeEnvironmentName": "sb-job-triage",
        "computeEnvironmentArn": "arn:aws:batch:::compute-environment/sb-job-triage",
        "status": "UPDATING",
        "state": "ENABLED",
    }
    queue = {
        "jobQueueName": "sb-job-triage",
        "state": "ENABLED",
        "status": "VALID",
        "computeEnvironmentOrder": [
            {"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}
        ],
    }
    events: list[str] = []

    def describe(name: str) -> dict[str, Any]:
        events.append(f"describe {environment['status']}")
        found = dict(environment)
        environment["status"] = "VALID"  # the earlier update ends after one more look
        return found

    def update(name: str, **changes: Any) -> None:
        events.append(f"update {sorted(changes.get('compute_resources') or {})}")

    monkeypatch.setattr(machine_sync.batch, "job_queues", lambda prefix: [queue])
    monkeypatch.setattr(machine_sync.batch, "compute_environments", lambda prefix: [environment])
    monkeypatch.setattr(machine_sync.batch, "compute_environment", describe)
    monkeypatch.setattr(machine_sync.batch, "update_compute_environment", update)
    monkeypatch.setattr(machine_sync.batch, "job_queue", lambda name: queue)
    monkeypatch.setattr(machine_sync.ec2, "launch_templates", lambda prefix: {})
    result = SyncResult()

    machine_sync.sync_machines(STACK, [triage], result, Waiting(5, 0))

    assert events[:3] == ["describe UPDATING", "describe VALID", "describe VALID"]
    assert events[3] == "update ['instanceTypes']"
    assert result.updated == ["compute-environment/sb-job-triage"]
    assert result.unchanged == ["job-queue/sb-job-triage"]
