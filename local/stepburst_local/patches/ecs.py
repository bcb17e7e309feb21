"""ECS: tasks really run, and ecs:runTask.sync answers like Step Functions does."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from stepburst_local.binding import current
from stepburst_local.moto_internals import (
    ActionResult,
    EC2ContainerServiceBackend,
    EC2ContainerServiceResponse,
    StateTaskServiceEcs,
    to_json_str,
)
from stepburst_local.patches.failures import ECS_ERRORS, from_client_errors, task_failed
from stepburst_local.patches.tracking import started_by_execution
from stepburst_local.patching import Hook, patch

# -- the integration ------------------------------------------------------------------------

ecs_sync = Hook(
    "ecs_sync",
    why="ecs:runTask.sync on AWS fails the task with States.TaskFailed (Cause: the stopped "
    "task as JSON) when its container exits non-zero, fails with AmazonECS.Unknown when "
    "RunTask answers with Failures, and names service errors after the SDK exception "
    "(ECS.AmazonECSException ...). moto succeeds on any stopped task and reports the rest "
    "as States.Runtime. Started tasks are tracked so that StopExecution stops them.",
    upstream="no upstream issue found",
)


class _NoTaskPlacedError(Exception):
    """RunTask answered with failures and no task (moto's integration would index it)."""

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__("RunTask placed no task")
        self.response = response


@patch(ecs_sync, StateTaskServiceEcs, "_normalise_response")
def _normalise_response(
    original: Callable[..., None],
    self: Any,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    # Applied after service_casing: ``original`` is its normaliser.
    original(self, response, boto_service_name, service_action_name)
    if service_action_name == "run_task" and not response.get("Tasks"):
        raise _NoTaskPlacedError(response)


@patch(ecs_sync, StateTaskServiceEcs, "_eval_service_task")
def _eval_service_task(  # noqa: PLR0917 - moto's signature
    original: Callable[..., None],
    self: Any,
    env: Any,
    resource_runtime_part: Any,
    normalised_parameters: dict[str, Any],
    state_credentials: Any,
) -> None:
    # https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html
    try:
        original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
    except _NoTaskPlacedError as unplaced:
        if self._is_integration_pattern():
            cause = to_json_str(unplaced.response)
            raise task_failed(env, self, "AmazonECS.Unknown", cause) from None
        env.stack.append(unplaced.response)
        return
    described = env.stack[-1]
    if isinstance(described, dict):
        for task in described.get("Tasks") or []:
            started_by_execution(env, "ecs", (task["ClusterArn"], task["TaskArn"]))


@patch(ecs_sync, StateTaskServiceEcs, "_build_sync_resolver")
def _build_sync_resolver(  # noqa: PLR0917 - moto's signature
    original: Callable[..., Callable[[], Any]],
    self: Any,
    env: Any,
    resource_runtime_part: Any,
    normalised_parameters: dict[str, Any],
    state_credentials: Any,
) -> Callable[[], Any]:
    resolve = original(self, env, resource_runtime_part, normalised_parameters, state_credentials)

    def resolve_failing_on_exit_code() -> Any:
        stopped = resolve()
        if stopped is not None and _task_failed(stopped):
            cause = to_json_str(stopped)
            raise task_failed(env, self, "States.TaskFailed", cause, states_error=True)
        return stopped

    return resolve_failing_on_exit_code


def _task_failed(task: dict[str, Any]) -> bool:
    containers = task.get("Containers") or []
    return not containers or any(c.get("ExitCode") != 0 for c in containers)


patch(ecs_sync, StateTaskServiceEcs, "_from_error")(from_client_errors(ECS_ERRORS))


# -- the service --------------------------------------------------------------------------------

ecs_capacity_fault = Hook(
    "ecs_capacity_fault",
    why="AWS's RunTask answers HTTP 200 with failures (e.g. RESOURCE:MEMORY) and no task "
    "when it cannot place one; moto always places. An armed fault "
    "(engine.faults.ecs_capacity) makes moto answer the same way.",
    upstream="no upstream issue found (a fault the engine injects)",
)


@patch(ecs_capacity_fault, EC2ContainerServiceResponse, "run_task")
def _run_task_response(original: Callable[[Any], Any], self: Any) -> Any:
    bindings = current()
    reason = bindings.faults.take_ecs_capacity() if bindings is not None else None
    if reason is None:
        return original(self)
    cluster = self._get_param("cluster", "default")
    arn = cluster if cluster.startswith("arn:") else f"cluster/{cluster}"
    return ActionResult({"tasks": [], "failures": [{"arn": arn, "reason": reason}]})


ecs_tasks_run = Hook(
    "ecs_tasks_run",
    why="moto's ECS tasks never run. Each task started by RunTask runs the worker "
    "container's entrypoint (a local process, or Docker); it is RUNNING until the process "
    "exits, then STOPPED with the real exit code. (Fargate containers may leave memory to "
    "the task; moto requires it per container, so a missing one counts as 0.)",
    upstream="getmoto/moto#7272 (memory per container); running tasks: no upstream issue found",
)


@patch(ecs_tasks_run, EC2ContainerServiceBackend, "_calculate_task_resource_requirements")
def _task_resource_requirements(original: Callable[[Any], Any], task_definition: Any) -> Any:
    definitions = []
    memory_keys = ("memory", "memoryReservation", "Memory", "MemoryReservation")
    for given in task_definition.container_definitions:
        if any(given.get(key) is not None for key in memory_keys):
            definitions.append(given)
        else:
            definitions.append({**given, "memoryReservation": 0})
    view = copy.copy(task_definition)
    view.container_definitions = definitions
    return original(view)


@patch(ecs_tasks_run, EC2ContainerServiceBackend, "run_task")
def _run_task(original: Callable[..., Any], self: Any, *args: Any, **kwargs: Any) -> Any:
    tasks = original(self, *args, **kwargs)
    bindings = current()
    if bindings is not None:
        for task in tasks:
            bindings.start_ecs_task(task)
    return tasks


HOOKS = (ecs_sync, ecs_capacity_fault, ecs_tasks_run)
