"""What a Batch-on-EC2 job with its own machines gets: a compute environment of its instance
types, a launch template for its disk, a queue.

A job with ``compute.batch.capacity: ec2`` that declares ``instance_types`` or ``storage_gb``
cannot share the stack's EC2 environments (their instance types are the template's, their root
volume Batch's default), so it gets its own, kept by the JobCompute custom resource with the
job's definitions (:mod:`stepburst.machine_sync`). This module only builds the requests and
decides what a change needs; it calls nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from stepburst.jobs import Job
from stepburst.layout import job_launch_template, job_own_queue

if TYPE_CHECKING:
    from stepburst.job_compute import StackCompute

JOB_TAG = "stepburst:job"
STACK_TAG = "stepburst:stack"
# The shared EC2 environments' instance types (template.yaml), for a job that declares a disk
# but no instance types.
DEFAULT_INSTANCE_TYPES: dict[str, tuple[str, ...]] = {
    "x86_64": ("optimal", "g5", "g6"),
    "arm64": ("m7g", "c7g", "r7g", "m6g", "c6g", "r6g", "g5g"),
}
# The strategies the shared environments use: Spot from the pools least likely to be
# interrupted, lowest price first; on-demand filling the cheapest types that fit, then others.
# https://docs.aws.amazon.com/batch/latest/userguide/allocation-strategies.html
SPOT_STRATEGY = "SPOT_PRICE_CAPACITY_OPTIMIZED"
ON_DEMAND_STRATEGY = "BEST_FIT_PROGRESSIVE"
# An environment takes an infrastructure update (instance types, type, launch template,
# network, instance role changed in place) only with the Batch service-linked role and one of
# these strategies; any other one is replaced by a new environment (a blue/green update).
# https://docs.aws.amazon.com/batch/latest/userguide/infrastructure-updates.html
# https://docs.aws.amazon.com/batch/latest/userguide/blue-green-updates.html
IN_PLACE_STRATEGIES = frozenset(
    {"BEST_FIT_PROGRESSIVE", "SPOT_CAPACITY_OPTIMIZED", "SPOT_PRICE_CAPACITY_OPTIMIZED"}
)
SERVICE_LINKED_ROLE_PATH = "role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch"
# The root volume of the ECS-optimised AMIs Batch starts (Amazon Linux 2 and 2023); it holds
# the containers' writable layers and /tmp scratch.
# https://docs.aws.amazon.com/batch/latest/userguide/launch-templates.html
ROOT_DEVICE = "/dev/xvda"
# A job no environment can ever place fails instead of waiting forever in RUNNABLE, as in the
# stack's own queues.
RUNNABLE_TIME_LIMIT_SECONDS = 600
# ComputeResourceUpdate fields this module sets; a difference in any of them is an update.
_COMPARED = (
    "type",
    "allocationStrategy",
    "minvCpus",
    "maxvCpus",
    "instanceTypes",
    "subnets",
    "securityGroupIds",
    "instanceRole",
    "launchTemplate",
    "tags",
)
_UNORDERED = ("instanceTypes", "subnets", "securityGroupIds")


def has_own_machines(job: Job) -> bool:
    """Whether the job runs on a compute environment of its own (EC2 with instance types or a
    disk size) rather than the stack's shared EC2 environments."""
    compute = job.compute
    if not compute.on_ec2 or compute.batch is None:
        return False
    return bool(compute.batch.instance_types) or compute.storage_gb is not None


def own_queue(stack: str, job: Job) -> str:
    return job_own_queue(stack, job.name)


def service_linked_role_arn(stack: StackCompute) -> str:
    """Batch's service-linked role, named outright: moto needs a role, and AWS takes this one
    as if none were given. https://docs.aws.amazon.com/batch/latest/userguide/using-service-linked-roles.html"""
    return f"arn:{stack.partition}:iam::{stack.account}:{SERVICE_LINKED_ROLE_PATH}"


def tags(stack: StackCompute, job: Job) -> dict[str, str]:
    return {STACK_TAG: stack.stack, JOB_TAG: job.name}


def launch_template_data(job: Job) -> dict[str, Any] | None:
    """The launch template of a job that declares ``storage_gb`` on EC2: a gp3 root volume of
    that size, encrypted; instance metadata through IMDSv2 only. None without a disk size."""
    if not has_own_machines(job) or job.compute.storage_gb is None:
        return None
    return {
        "BlockDeviceMappings": [
            {
                "DeviceName": ROOT_DEVICE,
                "Ebs": {
                    "VolumeSize": job.compute.storage_gb,
                    "VolumeType": "gp3",
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }
        ],
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
    }


def launch_template_name(stack: StackCompute, job: Job) -> str:
    return job_launch_template(stack.stack, job.name)


def instance_types(job: Job) -> list[str]:
    batch = job.compute.batch
    declared = list(batch.instance_types) if batch is not None else []
    return declared or list(DEFAULT_INSTANCE_TYPES[job.compute.architecture])


def compute_resources(
    stack: StackCompute, job: Job, launch_template: tuple[str, int] | None
) -> dict[str, Any]:
    """The environment's computeResources: the job's instance types, Spot or on-demand, no
    instance while no job waits, the stack's network and instance role."""
    if not stack.subnets or not stack.security_group_ids or not stack.instance_profile_arn:
        raise ValueError(
            f"job {job.name} needs its own EC2 compute environment: the JobCompute resource "
            "needs the properties Subnets, SecurityGroupIds and InstanceProfileArn"
        )
    spot = job.compute.uses_spot
    resources: dict[str, Any] = {
        "type": "SPOT" if spot else "EC2",
        "allocationStrategy": SPOT_STRATEGY if spot else ON_DEMAND_STRATEGY,
        "minvCpus": 0,
        "maxvCpus": stack.max_vcpus,
        "instanceTypes": instance_types(job),
        "subnets": list(stack.subnets),
        "securityGroupIds": list(stack.security_group_ids),
        "instanceRole": stack.instance_profile_arn,
        "tags": tags(stack, job),
    }
    if launch_template is not None:
        name, version = launch_template
        resources["launchTemplate"] = {"launchTemplateName": name, "version": str(version)}
    return resources


def compute_environment_request(
    stack: StackCompute, job: Job, name: str, resources: Mapping[str, Any]
) -> dict[str, Any]:
    """CreateComputeEnvironment's request."""
    return {
        "computeEnvironmentName": name,
        "type": "MANAGED",
        "state": "ENABLED",
        "computeResources": dict(resources),
        "serviceRole": service_linked_role_arn(stack),
        "tags": tags(stack, job),
    }


def job_queue_request(stack: StackCompute, job: Job, environment_arn: str) -> dict[str, Any]:
    """CreateJobQueue's request: the job's environment (by ARN) only."""
    return {
        "jobQueueName": own_queue(stack.stack, job),
        "state": "ENABLED",
        "priority": 1,
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": environment_arn}],
        "jobStateTimeLimitActions": [
            {
                "reason": reason,
                "state": "RUNNABLE",
                "maxTimeSeconds": RUNNABLE_TIME_LIMIT_SECONDS,
                "action": "CANCEL",
            }
            for reason in (
                "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
                "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
            )
        ],
        "tags": tags(stack, job),
    }


def queue_environments(queue: Mapping[str, Any]) -> list[str]:
    """The names of a queue's environments, in order (Batch gives ARNs, moto names)."""
    order = sorted(queue.get("computeEnvironmentOrder") or [], key=lambda entry: entry["order"])
    return [str(entry["computeEnvironment"]).rsplit("/", 1)[-1] for entry in order]


@dataclass(frozen=True, slots=True)
class EnvironmentChange:
    """What an existing environment needs to become the wanted one."""

    kind: Literal["unchanged", "update", "replace"]
    resources: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


def _normalised(name: str, value: Any) -> Any:
    if name in _UNORDERED and isinstance(value, list):
        return sorted(str(item) for item in value)
    if name == "launchTemplate" and isinstance(value, Mapping):
        return {
            "launchTemplateName": str(value.get("launchTemplateName") or ""),
            "version": str(value.get("version") or ""),
        }
    if name == "tags" and isinstance(value, Mapping):
        return {str(key): str(item) for key, item in value.items()}
    return value


def environment_change(
    current: Mapping[str, Any], wanted: Mapping[str, Any], service_role: str
) -> EnvironmentChange:
    """Compare a described environment with the wanted computeResources.

    Every field this module sets may change in place (ComputeResourceUpdate has them all) when
    the environment can take an infrastructure update; one that cannot (another service role,
    another allocation strategy, not a managed EC2 environment) is replaced.
    https://docs.aws.amazon.com/batch/latest/APIReference/API_UpdateComputeEnvironment.html
    """
    resources = dict(current.get("computeResources") or {})
    if current.get("type") != "MANAGED" or resources.get("type") not in ("EC2", "SPOT"):
        return EnvironmentChange("replace", reason="not a managed EC2 environment")
    if str(current.get("serviceRole") or "") != service_role:
        return EnvironmentChange("replace", reason="not Batch's service-linked role")
    if resources.get("allocationStrategy") not in IN_PLACE_STRATEGIES:
        return EnvironmentChange("replace", reason="an allocation strategy without updates")
    changed: dict[str, Any] = {}
    for name in _COMPARED:
        want = wanted.get(name)
        have = resources.get(name)
        if name == "launchTemplate" and want is None:
            if have:
                # An empty name takes the launch template off the environment.
                changed[name] = {"launchTemplateName": ""}
            continue
        if _normalised(name, want) != _normalised(name, have):
            changed[name] = want
    if not changed:
        return EnvironmentChange("unchanged")
    return EnvironmentChange("update", resources=changed)
