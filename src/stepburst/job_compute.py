"""Keep each job's task definition, job definition and roles in step with its job file (and,
through :mod:`stepburst.machine_sync`, the own Batch machines of a job that has them).

Run on every deploy by a CloudFormation custom resource (and by the local engine when it
starts), like the schedules: adding, changing or deleting a job file is all it takes. Every
name comes from :mod:`stepburst.layout`, so the planner names a job's definitions in each
unit's payload without asking anyone, and the state machine never changes for a job.

Credentials: a container's task role (ECS) or job role (Batch) is the stack's worker role,
which writes the ledger and reads the manifests. The job's own code never gets it: the worker
runs the job's command with the temporary credentials of the job's role (``STEPBURST_JOB_ROLE_ARN``,
assumed through STS), which grants the job's declared locations and secrets, its output prefix
and its input prefixes, nothing of the ledger or of other jobs. The item and combine
functions run a job's commands on Lambda with the same role: it trusts their roles too.
Declared secrets reach the container through ECS's ``secrets`` (``valueFrom``), read by a
per-job execution role granted only those secrets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stepburst.adapters import batch, ecs, iam
from stepburst.job_credentials import JOB_ROLE_VARIABLE, job_role_arn
from stepburst.jobs import Job, JobCatalog
from stepburst.layout import (
    combine_manifest_key,
    job_definition,
    job_resource_prefix,
    job_role_name,
    job_role_path,
    job_task_definition,
)
from stepburst.machine_sync import Waiting, sync_machines
from stepburst.observability import logger

CONTAINER_NAME = "worker"
# Batch's container properties have no entry point, so every image runs the worker's.
WORKER_ENTRYPOINT = ["python", "-m", "stepburst.worker"]
# Without the state machine's command override (a job submitted by hand), Batch fills these
# from the job's parameters; the worker leaves out any it left as a literal Ref::name.
# https://docs.aws.amazon.com/batch/latest/userguide/example-use-parameters.html
BATCH_COMMAND = [
    "run-unit",
    "--run",
    "Ref::run",
    "--unit",
    "Ref::unit",
    "--attempt",
    "Ref::attempt",
    "--route",
    "batch",
]
SPEC_DIGEST_TAG = "stepburst:spec-digest"
# The template's BatchMaxVcpus default, for a resource that does not pass it.
DEFAULT_MAX_VCPUS = 256
JOB_TAG = "stepburst:job"
STACK_TAG = "stepburst:stack"
ACCESS_POLICY = "job-access"
SECRETS_POLICY = "job-secrets"
# Job names have no "_", so no job's own role can take an execution role's name.
EXECUTION_SUFFIX = "_exec"
# Batch retries what the infrastructure did; the state machine records application failures.
BATCH_RETRY_STRATEGY: dict[str, Any] = {
    "attempts": 3,
    "evaluateOnExit": [
        {"action": "RETRY", "onStatusReason": "Host EC2*"},
        {"action": "RETRY", "onStatusReason": "Your Spot Task was interrupted*"},
        {"action": "RETRY", "onStatusReason": "ResourceInitializationError*"},
        {"action": "RETRY", "onStatusReason": "CannotPullContainerError*"},
        {"action": "EXIT", "onStatusReason": "*"},
    ],
}


@dataclass(frozen=True, slots=True)
class StackCompute:
    """What every job's definitions share: the stack's names, image, roles and settings."""

    stack: str
    partition: str
    region: str
    account: str
    worker_image: str
    execution_role_arn: str
    worker_role_arn: str
    log_group: str
    assign_public_ip: str
    input_bucket: str
    output_bucket: str
    environment: Mapping[str, str]
    trusted_role_arns: Sequence[str] = ()
    # What a job's own EC2 compute environment needs (stepburst.job_machines): the network and
    # instance profile of the stack's shared EC2 environments, and their vCPU bound.
    subnets: Sequence[str] = ()
    security_group_ids: Sequence[str] = ()
    instance_profile_arn: str = ""
    max_vcpus: int = DEFAULT_MAX_VCPUS

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> StackCompute:
        """From the custom resource's properties (template.yaml, ``JobCompute``)."""

        def text(name: str) -> str:
            value = properties.get(name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"the JobCompute resource needs the property {name}")
            return value

        trusted = properties.get("TrustedRoleArns") or []

        def names(name: str) -> list[str]:
            value = properties.get(name) or []
            listed = value.split(",") if isinstance(value, str) else value
            return [str(item) for item in listed if item]

        return cls(
            stack=text("StackName"),
            partition=text("Partition"),
            region=text("Region"),
            account=text("AccountId"),
            worker_image=text("WorkerImage"),
            execution_role_arn=text("ExecutionRoleArn"),
            worker_role_arn=text("WorkerRoleArn"),
            log_group=text("LogGroup"),
            assign_public_ip=text("AssignPublicIp"),
            input_bucket=text("InputBucket"),
            output_bucket=text("OutputBucket"),
            environment={str(k): str(v) for k, v in (properties.get("Environment") or {}).items()},
            trusted_role_arns=[str(arn) for arn in trusted],
            subnets=names("Subnets"),
            security_group_ids=names("SecurityGroupIds"),
            instance_profile_arn=str(properties.get("InstanceProfileArn") or ""),
            max_vcpus=int(properties.get("MaxVcpus") or DEFAULT_MAX_VCPUS),
        )

    def role_arn(self, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role{job_role_path(self.stack)}{name}"


@dataclass(slots=True)
class SyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, str]:
        """As CloudFormation takes custom resource data: flat strings."""
        return {
            "Created": ",".join(self.created),
            "Updated": ",".join(self.updated),
            "Unchanged": ",".join(self.unchanged),
            "Deleted": ",".join(self.deleted),
        }


# -- what a job gets -----------------------------------------------------------------------


def execution_role_name(stack: str, job: str) -> str:
    """The execution role of a job that declares secrets (it reads only those)."""
    return job_role_name(stack, job + EXECUTION_SUFFIX)


def _s3_arns(partition: str, location: str) -> tuple[str, str, str]:
    """(bucket ARN, object ARN pattern, key prefix) of ``s3://bucket/prefix``."""
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    return (
        f"arn:{partition}:s3:::{bucket}",
        f"arn:{partition}:s3:::{bucket}/{prefix}*",
        prefix,
    )


def secret_arn(stack: StackCompute, source: str) -> str:
    """The ARN IAM grants for a secret's ``valueFrom``: a parameter's name becomes its ARN in
    the stack's Region; a secret's ARN loses its JSON-key and version suffix."""
    if source.startswith("arn:"):
        parts = source.split(":")
        return ":".join(parts[:7]) if parts[2] == "secretsmanager" else source
    name = source.removeprefix("/")
    return f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter/{name}"


def _secret_statements(stack: StackCompute, job: Job) -> list[dict[str, Any]]:
    arns = [secret_arn(stack, source) for source in job.secrets.values()]
    statements: list[dict[str, Any]] = []
    secrets = sorted({arn for arn in arns if ":secretsmanager:" in arn})
    parameters = sorted({arn for arn in arns if ":ssm:" in arn})
    if secrets:
        statements.append(
            {
                "Sid": "ReadDeclaredSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secrets,
            }
        )
    if parameters:
        statements.append(
            {
                "Sid": "ReadDeclaredParameters",
                "Effect": "Allow",
                "Action": ["ssm:GetParameters", "ssm:GetParameter"],
                "Resource": parameters,
            }
        )
    return statements


def _input_prefixes(job: Job) -> list[str]:
    """The input bucket prefixes a job reads: its upload triggers' and its objects split's."""
    prefixes = [trigger.prefix for trigger in job.triggers.s3]
    if job.split.objects is not None:
        prefixes.append(job.split.objects.prefix)
    return sorted(set(prefixes))


def access_policy(stack: StackCompute, job: Job) -> dict[str, Any]:
    """What a job's own code may touch: its input prefixes, its output prefix, its declared
    locations and secrets. Nothing of the ledger, the manifests or other jobs' outputs."""
    partition = stack.partition
    reads = [f"s3://{stack.input_bucket}/{prefix}" for prefix in _input_prefixes(job)]
    reads += list(job.access.read)
    writes = [f"s3://{stack.output_bucket}/{job.output.prefix}", *job.access.write]
    statements: list[dict[str, Any]] = []
    for sid, locations, actions in (
        ("ReadDeclaredLocations", reads, ["s3:GetObject", "s3:GetObjectVersion"]),
        (
            "WriteDeclaredLocations",
            writes,
            [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
        ),
    ):
        if not locations:
            continue
        arns = [_s3_arns(partition, location) for location in locations]
        statements.append(
            {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": [a[1] for a in arns]}
        )
    listed: dict[str, set[str]] = {}
    for location in [*reads, *writes]:
        bucket_arn, _, prefix = _s3_arns(partition, location)
        listed.setdefault(bucket_arn, set()).add(f"{prefix}*")
    for index, (bucket_arn, prefixes) in enumerate(sorted(listed.items())):
        statements.append(
            {
                "Sid": f"ListDeclaredPrefixes{index}",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": sorted(prefixes)}},
            }
        )
    manifests = _combine_manifests(stack, job)
    if manifests is not None:
        statements.append(
            {
                "Sid": "ReadCombineManifests",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": manifests,
            }
        )
    statements += _secret_statements(stack, job)
    return {"Version": "2012-10-17", "Statement": statements}


def _combine_manifests(stack: StackCompute, job: Job) -> str | None:
    """The combine manifests of the job's own runs, which its combine command reads; None when
    it has none. A run id is ``<job>-<YYYYMMDDTHHMMSSZ>-<hash>`` (stepburst.planning) and job
    names are lowercase, so the fixed-width stamp keeps out another job whose name starts with
    this one's. https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-arn-format.html"""
    work_bucket = stack.environment.get("STEPBURST_WORK_BUCKET")
    if job.combine is None or job.combine.command is None or not work_bucket:
        return None
    run = f"{job.name}-????????T??????Z-*"
    return f"arn:{stack.partition}:s3:::{work_bucket}/{combine_manifest_key(run)}"


def _trust(principals: dict[str, Any], account: str) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principals,
        "Action": "sts:AssumeRole",
    }
    if "Service" in principals:
        # A service assumes it only for this account's tasks (confused deputy).
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def job_role_trust(stack: StackCompute) -> dict[str, Any]:
    """Who may assume a job's role: the worker role (ECS, Batch) and the roles of the
    functions that run the job's commands on Lambda (``TrustedRoleArns``: the item and
    combine functions')."""
    return _trust({"AWS": sorted({stack.worker_role_arn, *stack.trusted_role_arns})}, stack.account)


def _container_environment(stack: StackCompute, job: Job) -> list[dict[str, str]]:
    role = job_role_arn(stack.partition, stack.account, stack.stack, job.name)
    variables = {**stack.environment, JOB_ROLE_VARIABLE: role}
    return [{"name": name, "value": value} for name, value in sorted(variables.items())]


def role_for(stack: StackCompute, job: Job) -> str:
    return job_role_name(stack.stack, job.name)


def _execution_role_arn(stack: StackCompute, job: Job) -> str:
    if not job.secrets:
        return stack.execution_role_arn
    return stack.role_arn(execution_role_name(stack.stack, job.name))


def _secrets(job: Job) -> list[dict[str, str]]:
    return [{"name": name, "valueFrom": source} for name, source in sorted(job.secrets.items())]


def _tags(stack: StackCompute, job: Job) -> dict[str, str]:
    return {STACK_TAG: stack.stack, JOB_TAG: job.name}


def _digest(definition: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:32]


def task_definition(stack: StackCompute, job: Job) -> dict[str, Any]:
    """The ECS task definition (RegisterTaskDefinition's request) of a job whose units may run
    on ECS: Fargate, the job's architecture, image, size, storage and secrets."""
    compute = job.compute
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": compute.image or stack.worker_image,
        "essential": True,
        "entryPoint": WORKER_ENTRYPOINT,
        "readonlyRootFilesystem": True,
        "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/tmp", "readOnly": False}],
        # Fargate Spot sends SIGTERM two minutes before reclaiming; use all of it.
        "stopTimeout": 120,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": stack.log_group,
                "awslogs-region": stack.region,
                "awslogs-stream-prefix": "ecs",
            },
        },
        "environment": _container_environment(stack, job),
    }
    if job.secrets:
        container["secrets"] = _secrets(job)
    definition: dict[str, Any] = {
        "family": job_task_definition(stack.stack, job.name),
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": str(compute.cpu),
        "memory": str(compute.memory_mb),
        "runtimePlatform": {
            "cpuArchitecture": compute.architecture.upper(),
            "operatingSystemFamily": "LINUX",
        },
        "executionRoleArn": _execution_role_arn(stack, job),
        "taskRoleArn": stack.worker_role_arn,
        "volumes": [{"name": "scratch"}],
        "containerDefinitions": [container],
    }
    if compute.storage_gb is not None:
        definition["ephemeralStorage"] = {"sizeInGiB": compute.storage_gb}
    tags = {**_tags(stack, job), SPEC_DIGEST_TAG: _digest(definition)}
    return {**definition, "tags": [{"key": key, "value": value} for key, value in tags.items()]}


def batch_job_definition(stack: StackCompute, job: Job) -> dict[str, Any]:
    """The Batch job definition (RegisterJobDefinition's request) of a ``platform: batch``
    job: Fargate or EC2, its architecture, image, size, GPUs, storage, secrets and parameter
    defaults."""
    compute = job.compute
    ec2 = compute.on_ec2
    requirements = [
        {"type": "VCPU", "value": f"{compute.cpu / 1024:g}"},
        {"type": "MEMORY", "value": str(compute.memory_mb)},
    ]
    if compute.batch is not None and compute.batch.gpus:
        requirements.append({"type": "GPU", "value": str(compute.batch.gpus)})
    container: dict[str, Any] = {
        "image": compute.image or stack.worker_image,
        "command": BATCH_COMMAND,
        "resourceRequirements": requirements,
        "executionRoleArn": _execution_role_arn(stack, job),
        "jobRoleArn": stack.worker_role_arn,
        "readonlyRootFilesystem": True,
        "volumes": [{"name": "scratch"}],
        "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/tmp", "readOnly": False}],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": stack.log_group,
                "awslogs-region": stack.region,
                "awslogs-stream-prefix": "batch",
            },
        },
        "environment": _container_environment(stack, job),
    }
    if job.secrets:
        container["secrets"] = _secrets(job)
    if not ec2:
        container["networkConfiguration"] = {"assignPublicIp": stack.assign_public_ip}
        container["fargatePlatformConfiguration"] = {"platformVersion": "LATEST"}
        container["runtimePlatform"] = {
            "cpuArchitecture": compute.architecture.upper(),
            "operatingSystemFamily": "LINUX",
        }
        if compute.storage_gb is not None:
            container["ephemeralStorage"] = {"sizeInGiB": compute.storage_gb}
    definition: dict[str, Any] = {
        "jobDefinitionName": job_definition(stack.stack, job.name),
        "type": "container",
        "platformCapabilities": ["EC2" if ec2 else "FARGATE"],
        "propagateTags": True,
        "retryStrategy": BATCH_RETRY_STRATEGY,
        # Batch refuses an empty value; an empty default is an unset Ref::name, left out.
        "parameters": {name: value for name, value in job.params.items() if value},
        "containerProperties": container,
    }
    return {**definition, "tags": {**_tags(stack, job), SPEC_DIGEST_TAG: _digest(definition)}}


# -- keeping them in step ------------------------------------------------------------------


def _sync_roles(stack: StackCompute, jobs: Sequence[Job], result: SyncResult) -> None:
    path = job_role_path(stack.stack)
    present = set(iam.role_names(path))
    wanted: set[str] = set()
    for job in jobs:
        name = role_for(stack, job)
        wanted.add(name)
        iam.put_role(
            name=name,
            path=path,
            trust=job_role_trust(stack),
            policies={ACCESS_POLICY: access_policy(stack, job)},
            description=f"What the code of stepburst job {job.name} may touch",
            tags=_tags(stack, job),
        )
        (result.updated if name in present else result.created).append(f"role/{name}")
        if job.secrets:
            execution = execution_role_name(stack.stack, job.name)
            wanted.add(execution)
            iam.put_role(
                name=execution,
                path=path,
                trust=_trust({"Service": "ecs-tasks.amazonaws.com"}, stack.account),
                policies={
                    SECRETS_POLICY: {
                        "Version": "2012-10-17",
                        "Statement": [*_secret_statements(stack, job), *_pull_and_log(stack)],
                    }
                },
                description=f"Starts the containers of stepburst job {job.name} with its secrets",
                tags=_tags(stack, job),
            )
            (result.updated if execution in present else result.created).append(f"role/{execution}")
    for name in sorted(present - wanted):
        iam.delete_role(name)
        result.deleted.append(f"role/{name}")


def _pull_and_log(stack: StackCompute) -> list[dict[str, Any]]:
    """What an execution role needs besides secrets: pull images, write the worker's logs."""
    return [
        {
            "Sid": "PullImages",
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchGetImage",
            ],
            "Resource": "*",
        },
        {
            "Sid": "WriteWorkerLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:"
            f"log-group:{stack.log_group}:*",
        },
    ]


def _sync_task_definitions(stack: StackCompute, jobs: Sequence[Job], result: SyncResult) -> None:
    present = set(ecs.task_definition_families(job_resource_prefix(stack.stack)))
    wanted: set[str] = set()
    # A platform: batch job never runs on ECS (its fallback is Batch too), and its size may be
    # one only EC2 has.
    for job in (job for job in jobs if job.compute.platform != "batch"):
        definition = task_definition(stack, job)
        family = str(definition["family"])
        wanted.add(family)
        revisions = ecs.active_revisions(family) if family in present else []
        digest = next(tag["value"] for tag in definition["tags"] if tag["key"] == SPEC_DIGEST_TAG)
        if revisions and ecs.task_definition_tags(revisions[-1]).get(SPEC_DIGEST_TAG) == digest:
            result.unchanged.append(f"task-definition/{family}")
            continue
        ecs.register_task_definition(definition)
        for old in revisions:
            ecs.deregister_task_definition(old)
        (result.updated if revisions else result.created).append(f"task-definition/{family}")
    for family in sorted(present - wanted):
        # A family whose revisions are all inactive may still be listed (the local engine's).
        revisions = ecs.active_revisions(family)
        for old in revisions:
            ecs.deregister_task_definition(old)
        if revisions:
            result.deleted.append(f"task-definition/{family}")


def _sync_job_definitions(stack: StackCompute, jobs: Sequence[Job], result: SyncResult) -> None:
    present: dict[str, list[dict[str, Any]]] = {}
    for found in batch.active_job_definitions(job_resource_prefix(stack.stack)):
        present.setdefault(str(found["name"]), []).append(found)
    wanted: set[str] = set()
    # Only a platform: batch job has units routed to Batch.
    for job in (job for job in jobs if job.compute.platform == "batch"):
        definition = batch_job_definition(stack, job)
        name = str(definition["jobDefinitionName"])
        wanted.add(name)
        revisions = present.get(name, [])
        digest = definition["tags"][SPEC_DIGEST_TAG]
        if revisions and revisions[-1]["tags"].get(SPEC_DIGEST_TAG) == digest:
            result.unchanged.append(f"job-definition/{name}")
            continue
        batch.register_job_definition(definition)
        for old in revisions:
            batch.deregister_job_definition(str(old["arn"]))
        (result.updated if revisions else result.created).append(f"job-definition/{name}")
    for name in sorted(set(present) - wanted):
        for old in present[name]:
            batch.deregister_job_definition(str(old["arn"]))
        result.deleted.append(f"job-definition/{name}")


def sync(catalog: JobCatalog, stack: StackCompute, waiting: Waiting | None = None) -> SyncResult:
    """Create, update and remove the per-job roles, definitions, and the own compute
    environments and queues of jobs that have them, to match ``catalog``."""
    jobs = sorted(catalog, key=lambda job: job.name)
    result = SyncResult()
    # Roles first: a definition names its execution role, which must exist to be passed.
    _sync_roles(stack, jobs, result)
    _sync_task_definitions(stack, jobs, result)
    _sync_job_definitions(stack, jobs, result)
    sync_machines(stack, jobs, result, waiting)
    logger.info("job compute in sync", extra=result.as_dict())
    return result


def remove_all(stack: StackCompute, waiting: Waiting | None = None) -> SyncResult:
    """Remove every per-job definition, role, compute environment and queue of the stack (the
    stack is being deleted)."""
    result = SyncResult()
    sync_machines(stack, [], result, waiting)
    _sync_task_definitions(stack, [], result)
    _sync_job_definitions(stack, [], result)
    _sync_roles(stack, [], result)
    return result
