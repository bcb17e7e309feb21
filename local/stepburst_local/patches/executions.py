"""Step Functions' API on executions: nameless starts, StopExecution's reason, Map Run listings.

https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html
https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html
https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListMapRuns.html
https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeMapRun.html
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from stepburst_local.moto_internals import (
    ActionResult,
    InvalidToken,
    ResourceNotFound,
    StepFunctionResponse,
    StepFunctionsParserBackend,
    ValidationException,
)
from stepburst_local.patches.map_run import ChildRun, DistributedMapRun
from stepburst_local.patching import Hook, patch

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
INTERPRETER_START_SECONDS = 60.0
"""How long a stop waits for a just-started execution's interpreter to run its program (on a
loaded machine a new interpreter thread can take seconds to be scheduled)."""

# -- names ---------------------------------------------------------------------------------------

execution_name = Hook(
    "execution_name",
    why="StartExecution without a name gets a fresh UUID as its name on AWS; moto's "
    "interpreter names it 'None', so a second nameless start fails with "
    "ExecutionAlreadyExists (or returns the first execution while it runs).",
    upstream="no upstream issue found",
)


@patch(execution_name, StepFunctionsParserBackend, "start_execution")
def _start_execution(  # noqa: PLR0917 - moto's signature
    original: Callable[..., Any],
    self: Any,
    state_machine_arn: str,
    name: Any = None,
    execution_input: Any = None,
    trace_header: Any = None,
) -> Any:
    # "If you don't provide a name for the execution, Step Functions automatically generates
    # a universally unique identifier (UUID) as the execution name." (API_StartExecution)
    if name is None:
        name = str(uuid.uuid4())
    return original(self, state_machine_arn, name, execution_input, trace_header)


# -- StopExecution ---------------------------------------------------------------------------

stop_reason = Hook(
    "stop_reason",
    why="StopExecution's error and cause are the aborted execution's (its ExecutionAborted "
    "event, its status-change event) on AWS; moto's API does not read them and stops every "
    "execution with empty ones, answers a null stopDate until the interpreter notices, and "
    "fails (500) to stop an execution whose interpreter thread has not set itself up yet, "
    "or loses the stop when it comes before the program's first state.",
    upstream="no upstream issue found",
)


@patch(stop_reason, StepFunctionResponse, "stop_execution", wraps=False)
def _stop_execution(self: Any) -> Any:
    """Replaces moto's response, which reads only the execution's ARN."""
    arn = self._get_param("executionArn")
    error, cause = self._get_param("error"), self._get_param("cause")
    backend = self.stepfunction_backend
    execution = backend.describe_execution(arn)
    _await_interpreter(execution)
    stopped_at = datetime.datetime.now(tz=datetime.UTC)
    if execution.status == "RUNNING" and (error is not None or cause is not None):
        # The execution stops with the reason first; moto's stop below then finds it stopped
        # and only stops what it started (see the stop_execution hook).
        execution.stop(stop_date=stopped_at, error=error or "", cause=cause or "")
    execution = backend.stop_execution(arn)
    return ActionResult({"stopDate": execution.stop_date or stopped_at})


def _await_interpreter(execution: Any) -> None:
    """Until the execution's program runs: moto's stop changes only a running program's state,
    so a stop between the interpreter's environment and its first state would be lost."""
    deadline = time.monotonic() + INTERPRETER_START_SECONDS
    while (
        not _program_started(execution)
        and execution.status == "RUNNING"
        and time.monotonic() < deadline
    ):
        time.sleep(0.005)


def _program_started(execution: Any) -> bool:
    env = _environment(execution)
    return env is not None and env.program_state() is not None


# -- Map Runs ------------------------------------------------------------------------------------

map_run_api = Hook(
    "map_run_api",
    why="ListExecutions with mapRunArn lists a Distributed Map's child executions on AWS "
    "(moto answers 500); DescribeMapRun of an unknown Map Run answers ResourceNotFound (moto: "
    "500), and neither it nor ListMapRuns may fail because another execution is starting "
    "(moto reads every execution's interpreter, which a starting one does not have yet).",
    upstream="no upstream issue found",
)


@patch(map_run_api, StepFunctionResponse, "list_executions")
def _list_executions(original: Callable[[Any], Any], self: Any) -> Any:
    map_run_arn = self._get_param("mapRunArn")
    if map_run_arn is None:
        return original(self)
    if self._get_param("stateMachineArn") is not None:
        raise ValidationException("You can specify either a mapRunArn or a stateMachineArn")
    run = _engine_run(self.stepfunction_backend, map_run_arn)
    status = self._get_param("statusFilter")
    children = [c for c in run.started_children() if status is None or c.status == status]
    # "Results are sorted by time, with the most recent execution first."
    children.sort(key=lambda child: (child.start, child.index), reverse=True)
    page, next_token = _page(
        children, self._get_int_param("maxResults"), self._get_param("nextToken")
    )
    response: dict[str, Any] = {"executions": [_listed(run, child) for child in page]}
    if next_token is not None:
        response["nextToken"] = next_token
    return ActionResult(response)


@patch(map_run_api, StepFunctionsParserBackend, "describe_map_run", wraps=False)
def _describe_map_run(self: Any, map_run_arn: str) -> dict[str, Any]:
    """Replaces moto's, which fails with a TypeError on an unknown Map Run."""
    return dict(_record(self, map_run_arn).describe())


@patch(map_run_api, StepFunctionsParserBackend, "list_map_runs", wraps=False)
def _list_map_runs(self: Any, execution_arn: str) -> dict[str, Any]:
    """Replaces moto's, which fails on an execution whose interpreter has not started yet."""
    execution = self.describe_execution(execution_arn=execution_arn)
    env = _environment(execution)
    records = env.map_run_record_pool_manager.get_all() if env is not None else []
    return {"mapRuns": [record.list_item() for record in records]}


def _listed(run: DistributedMapRun, child: ChildRun) -> dict[str, Any]:
    item: dict[str, Any] = {
        "executionArn": run.child_execution_arn(child),
        "stateMachineArn": run.record.map_state_machine_arn,
        "name": child.name,
        "status": child.status,
        "startDate": child.start,
        "mapRunArn": run.record.map_run_arn,
        "itemCount": run.item_count(child),
        "redriveCount": 0,
    }
    if child.stop is not None:
        item["stopDate"] = child.stop
    return item


def _page(
    items: list[ChildRun], max_results: int | None, token: str | None
) -> tuple[list[ChildRun], str | None]:
    size = max_results or DEFAULT_PAGE_SIZE
    if not 0 < size <= MAX_PAGE_SIZE:
        raise ValidationException(
            f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy "
            f"constraint: Member must have value less than or equal to {MAX_PAGE_SIZE}"
        )
    start = 0
    if token is not None:
        if not token.isdigit():
            raise InvalidToken(f"'{token}'")
        start = int(token)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def _engine_run(backend: Any, map_run_arn: str) -> DistributedMapRun:
    run = DistributedMapRun.of(_record(backend, map_run_arn))
    if run is None:  # a Map Run this engine's hook did not run: nothing lists its children
        raise ResourceNotFound(map_run_arn)
    return run


def _record(backend: Any, map_run_arn: str) -> Any:
    for execution in _executions(backend):
        env = _environment(execution)
        record = env.map_run_record_pool_manager.get(map_run_arn) if env is not None else None
        if record is not None:
            return record
    raise ResourceNotFound(map_run_arn)


def _executions(backend: Any) -> Iterator[Any]:
    for machine in list(backend.state_machines):
        yield from list(machine.executions)


def _environment(execution: Any) -> Any:
    worker = getattr(execution, "exec_worker", None)
    return getattr(worker, "env", None)


HOOKS = (execution_name, stop_reason, map_run_api)
