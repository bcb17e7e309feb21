"""Keep each job's own Batch compute environment, launch template and queue in step with its
job file (see :mod:`stepburst.job_machines` for what they are).

AWS Batch changes these asynchronously, and refuses some steps until an earlier one has
settled, so every step waits for the state the next one needs, with a deadline:

* a queue may name only VALID environments (CreateJobQueue);
* an update leaves the environment UPDATING until it is VALID again (UpdateComputeEnvironment);
* a queue is deleted only once DISABLED, and its jobs end with it (DeleteJobQueue);
* an environment is deleted only once DISABLED and in no queue (DeleteComputeEnvironment).

https://docs.aws.amazon.com/batch/latest/APIReference/API_CreateJobQueue.html
https://docs.aws.amazon.com/batch/latest/APIReference/API_UpdateComputeEnvironment.html
https://docs.aws.amazon.com/batch/latest/APIReference/API_DeleteJobQueue.html
https://docs.aws.amazon.com/batch/latest/APIReference/API_DeleteComputeEnvironment.html
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stepburst.adapters import batch, ec2
from stepburst.job_machines import (
    compute_environment_request,
    compute_resources,
    environment_change,
    has_own_machines,
    job_queue_request,
    launch_template_data,
    launch_template_name,
    own_queue,
    queue_environments,
    service_linked_role_arn,
    tags,
)
from stepburst.jobs import Job
from stepburst.layout import job_compute_environment, job_resource_prefix
from stepburst.observability import logger

if TYPE_CHECKING:
    from stepburst.job_compute import StackCompute, SyncResult


class MachinesNotSettledError(RuntimeError):
    """A compute environment or queue did not reach the state the next step needs."""


@dataclass(frozen=True, slots=True)
class Waiting:
    """How long to wait for one state, and how often to look."""

    deadline_seconds: float = 600.0
    interval_seconds: float = 5.0


def wait_for(
    describe: Callable[[], Mapping[str, Any] | None],
    settled: Callable[[Mapping[str, Any] | None], bool],
    what: str,
    waiting: Waiting,
) -> None:
    """Poll ``describe`` until ``settled``; fail at once on INVALID, or at the deadline."""
    deadline = time.monotonic() + waiting.deadline_seconds
    while True:
        found = describe()
        if settled(found):
            return
        if found is not None and found.get("status") == "INVALID":
            reason = found.get("statusReason") or "no reason given"
            raise MachinesNotSettledError(f"{what}: Batch made it INVALID: {reason}")
        if time.monotonic() >= deadline:
            status = "gone" if found is None else f"{found.get('status')}/{found.get('state')}"
            raise MachinesNotSettledError(
                f"{what}: still {status} after {waiting.deadline_seconds:g} s"
            )
        time.sleep(waiting.interval_seconds)


def _valid(state: str | None = None) -> Callable[[Mapping[str, Any] | None], bool]:
    def settled(found: Mapping[str, Any] | None) -> bool:
        return (
            found is not None
            and found.get("status") == "VALID"
            and (state is None or found.get("state") == state)
        )

    return settled


def _gone(found: Mapping[str, Any] | None) -> bool:
    return found is None or found.get("status") == "DELETED"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:8]


class MachineSync:
    """One pass over the stack's per-job environments, templates and queues."""

    def __init__(self, stack: StackCompute, result: SyncResult, waiting: Waiting) -> None:
        self.stack = stack
        self.result = result
        self.waiting = waiting
        prefix = job_resource_prefix(stack.stack)
        self.queues = {str(q["jobQueueName"]): q for q in batch.job_queues(prefix)}
        self.environments = {
            str(e["computeEnvironmentName"]): e for e in batch.compute_environments(prefix)
        }
        self.templates = ec2.launch_templates(prefix)
        self.wanted_queues: set[str] = set()
        self.kept_environments: set[str] = set()
        self.wanted_templates: set[str] = set()

    # -- one job -----------------------------------------------------------------------------

    def keep(self, job: Job) -> None:
        template = self._keep_launch_template(job)
        queue_name = own_queue(self.stack.stack, job)
        queue = self.queues.get(queue_name)
        base = job_compute_environment(self.stack.stack, job.name)
        named = queue_environments(queue) if queue is not None else []
        current_name = next((name for name in named if name in self.environments), None)
        if current_name is None and base in self.environments:
            current_name = base
        resources = compute_resources(self.stack, job, template)
        retired: str | None = None
        if current_name is None:
            environment = self._create_environment(job, base, resources)
        else:
            environment = current_name
            current = self.environments[current_name]
            if current.get("status") != "VALID":
                # Still CREATING or UPDATING from an earlier deploy: Batch takes no update then.
                self._wait_environment(current_name, None)
                current = batch.compute_environment(current_name) or current
            change = environment_change(current, resources, service_linked_role_arn(self.stack))
            if change.kind == "update":
                batch.update_compute_environment(
                    current_name, state="ENABLED", compute_resources=change.resources
                )
                self._wait_environment(current_name, "ENABLED")
                self.result.updated.append(f"compute-environment/{current_name}")
            elif change.kind == "replace":
                logger.info(
                    "replacing a compute environment",
                    extra={"environment": current_name, "reason": change.reason},
                )
                variant = _digest([resources, current_name])
                environment = self._create_environment(
                    job, job_compute_environment(self.stack.stack, job.name, variant), resources
                )
                retired = current_name
            else:
                if current.get("state") != "ENABLED":
                    batch.update_compute_environment(current_name, state="ENABLED")
                    self._wait_environment(current_name, "ENABLED")
                self.result.unchanged.append(f"compute-environment/{current_name}")
        self.kept_environments.add(environment)
        self._keep_queue(job, queue_name, queue, environment)
        if retired is not None:
            self._delete_environment(retired)

    def _keep_launch_template(self, job: Job) -> tuple[str, int] | None:
        data = launch_template_data(job)
        if data is None:
            return None
        name = launch_template_name(self.stack, job)
        self.wanted_templates.add(name)
        latest = self.templates.get(name)
        # EC2 may describe the data with defaults filled in: a digest of what was sent, in the
        # version's description, tells whether it changed.
        description = f"stepburst {_digest(data)}"
        if latest is None:
            version = ec2.create_launch_template(
                name, data, description=description, tags=tags(self.stack, job)
            )
            self.result.created.append(f"launch-template/{name}")
            return name, version
        if ec2.launch_template_description(name, latest) == description:
            self.result.unchanged.append(f"launch-template/{name}")
            return name, latest
        # A new version: the environment's update to it replaces its instances.
        version = ec2.create_launch_template_version(name, data, description=description)
        self.result.updated.append(f"launch-template/{name}")
        return name, version

    def _create_environment(self, job: Job, name: str, resources: dict[str, Any]) -> str:
        batch.create_compute_environment(
            compute_environment_request(self.stack, job, name, resources)
        )
        self._wait_environment(name, "ENABLED")
        self.result.created.append(f"compute-environment/{name}")
        return name

    def _keep_queue(
        self, job: Job, name: str, queue: Mapping[str, Any] | None, environment: str
    ) -> None:
        self.wanted_queues.add(name)
        # A queue names its environments by ARN.
        described = batch.compute_environment(environment)
        if described is None:
            raise MachinesNotSettledError(f"compute environment {environment} is gone")
        arn = str(described["computeEnvironmentArn"])
        if queue is None:
            batch.create_job_queue(job_queue_request(self.stack, job, arn))
            self._wait_queue(name, "ENABLED")
            self.result.created.append(f"job-queue/{name}")
            return
        if queue_environments(queue) == [environment] and queue.get("state") == "ENABLED":
            self.result.unchanged.append(f"job-queue/{name}")
            return
        order = job_queue_request(self.stack, job, arn)["computeEnvironmentOrder"]
        batch.update_job_queue(name, state="ENABLED", compute_environment_order=order)
        self._wait_queue(name, "ENABLED")
        self.result.updated.append(f"job-queue/{name}")

    # -- removal -----------------------------------------------------------------------------

    def remove_unwanted(self) -> None:
        """Queues first (an environment in a queue cannot go), then environments, then the
        launch templates no environment uses any more."""
        for name in sorted(set(self.queues) - self.wanted_queues):
            if self.queues[name].get("state") != "DISABLED":
                batch.update_job_queue(name, state="DISABLED")
            self._wait_queue(name, "DISABLED")
            batch.delete_job_queue(name)
            self._wait_queue_gone(name)
            self.result.deleted.append(f"job-queue/{name}")
        for name in sorted(set(self.environments) - self.kept_environments):
            self._delete_environment(name)
        for name in sorted(set(self.templates) - self.wanted_templates):
            ec2.delete_launch_template(name)
            self.result.deleted.append(f"launch-template/{name}")

    def _delete_environment(self, name: str) -> None:
        described = batch.compute_environment(name)
        if described is None:
            return
        if described.get("state") != "DISABLED":
            batch.update_compute_environment(name, state="DISABLED")
        self._wait_environment(name, "DISABLED")
        batch.delete_compute_environment(name)
        wait_for(
            lambda: batch.compute_environment(name),
            _gone,
            f"compute environment {name}",
            self.waiting,
        )
        self.result.deleted.append(f"compute-environment/{name}")

    # -- waiting -----------------------------------------------------------------------------

    def _wait_environment(self, name: str, state: str | None) -> None:
        wait_for(
            lambda: batch.compute_environment(name),
            _valid(state),
            f"compute environment {name}",
            self.waiting,
        )

    def _wait_queue_gone(self, name: str) -> None:
        wait_for(lambda: batch.job_queue(name), _gone, f"job queue {name}", self.waiting)

    def _wait_queue(self, name: str, state: str) -> None:
        wait_for(lambda: batch.job_queue(name), _valid(state), f"job queue {name}", self.waiting)


def sync_machines(
    stack: StackCompute,
    jobs: Sequence[Job],
    result: SyncResult,
    waiting: Waiting | None = None,
) -> None:
    """Create, update and remove the per-job environments, templates and queues to match
    ``jobs``: those with own machines keep theirs, every other one's are removed."""
    machines = MachineSync(stack, result, waiting or Waiting())
    for job in jobs:
        if has_own_machines(job):
            machines.keep(job)
    machines.remove_unwanted()
