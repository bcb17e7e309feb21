"""What the template gives the jobs' own Batch machines: the JobCompute resource names the
shared EC2 environments' network, instance profile and vCPU bound; its function may keep only
the stack's per-job environments, queues and launch templates; the state machine may submit to
their queues."""

from __future__ import annotations

from typing import Any

import pytest

from stepburst.job_machines import DEFAULT_INSTANCE_TYPES

pytestmark = pytest.mark.template

JOB_ENVIRONMENTS = "compute-environment/${AWS::StackName}-job-*"
JOB_QUEUES = "job-queue/${AWS::StackName}-job-*"


def policy_statements(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        statement["Sid"]: statement
        for policy in resource["Properties"]["Policies"]
        for statement in policy["Statement"]
    }


def subs(value: Any) -> list[str]:
    listed = value if isinstance(value, list) else [value]
    return [item["Fn::Sub"] for item in listed if isinstance(item, dict) and "Fn::Sub" in item]


def test_default_instance_types_are_the_shared_environments(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for architecture, logical_id in (
        ("x86_64", "WorkerEc2OnDemandX86ComputeEnvironment"),
        ("arm64", "WorkerEc2OnDemandArmComputeEnvironment"),
    ):
        shared = resources[logical_id]["Properties"]["ComputeResources"]
        assert list(DEFAULT_INSTANCE_TYPES[architecture]) == shared["InstanceTypes"]


def test_job_compute_names_the_shared_ec2_network_and_instance_profile(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    shared = resources["WorkerEc2OnDemandX86ComputeEnvironment"]["Properties"]["ComputeResources"]
    job_compute = resources["JobCompute"]
    properties = job_compute["Properties"]
    assert properties["Subnets"] == shared["Subnets"]
    assert properties["SecurityGroupIds"] == shared["SecurityGroupIds"]
    assert properties["InstanceProfileArn"] == shared["InstanceRole"]
    assert properties["MaxVcpus"] == shared["MaxvCpus"]
    # Batch's service-linked role exists once a shared environment does.
    assert job_compute["DependsOn"] == "WorkerEc2OnDemandX86ComputeEnvironment"


def test_the_function_keeps_only_the_stacks_per_job_machines(template: dict[str, Any]) -> None:
    function = template["Resources"]["SyncJobComputeFunction"]
    statements = policy_statements(function)
    keep = statements["KeepJobComputeEnvironmentsAndQueues"]
    assert {"batch:CreateComputeEnvironment", "batch:DeleteJobQueue"} <= set(keep["Action"])
    scoped = subs(keep["Resource"])
    assert len(scoped) == 2
    assert scoped[0].endswith(f":{JOB_ENVIRONMENTS}")
    assert scoped[1].endswith(f":{JOB_QUEUES}")
    for sid in ("CreateJobLaunchTemplates", "KeepJobLaunchTemplates"):
        condition = statements[sid]["Condition"]["StringEquals"]
        assert list(condition.values()) == [{"Ref": "AWS::StackName"}]
    assert statements["TagJobLaunchTemplatesOnCreate"]["Condition"]["StringEquals"] == {
        "ec2:CreateAction": "CreateLaunchTemplate"
    }
    assert statements["HandJobEnvironmentsTheInstanceRole"]["Resource"] == {
        "Fn::GetAtt": ["BatchInstanceRole", "Arn"]
    }
    # Creating, disabling and deleting environments and queues waits on Batch for minutes.
    assert function["Properties"]["Timeout"] == 900


def test_the_state_machine_may_submit_to_the_jobs_own_queues(template: dict[str, Any]) -> None:
    machine = template["Resources"]["CoordinatorStateMachine"]
    statements = {
        statement.get("Sid"): statement
        for policy in machine["Properties"]["Policies"]
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
    }
    submit = statements["SubmitWorkerJobs"]
    assert any(sub.endswith(JOB_QUEUES) for sub in subs(submit["Resource"]))
