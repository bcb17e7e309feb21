# mypy: disable-error-code="method-assign,attr-defined,assignment,misc,typeddict-item,arg-type"
"""Adaptations of moto (pinned at 5.2.5) that make its AWS behave like AWS for this project.

moto's Step Functions interpreter, Lambda, ECS, Batch, S3 and EventBridge models get close to
AWS but not all the way. Each hook below is small, named, says why it exists, and has a
conformance test in ``tests/local/test_hooks.py`` (``test_<hook name>``) that pins the AWS
behaviour it restores, so a moto upgrade shows at once which adaptation broke.

Hooks are installed once per process (:func:`install`) and are inert until an engine binds
itself (:func:`bind`): the fixes to moto's own behaviour (JSONPath, casing, quotas, map
semantics) apply always; the compute hooks (Lambda code, containers, faults, time scaling)
consult the bound engine.

(Type checking: replacing moto's methods and module names is this module's purpose, so mypy's
complaints about assigning to methods and to moto's attributes are switched off here only.)
"""

from __future__ import annotations

import copy
import datetime
import functools
import itertools
import json
import logging
import os
import re
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote_plus

from stepburst_local.asl import Adaptation, ItemBatcher, adapt_definition
from stepburst_local.faults import Faults

LOG = logging.getLogger(__name__)

HISTORY_EVENT_LIMIT = 25_000
"""Events in one Standard execution's history; one more fails the execution, as on AWS."""
PAYLOAD_LIMIT_BYTES = 256 * 1024
"""State input/output limit (UTF-8 bytes); above it a state fails with States.DataLimitExceeded."""
SYNC_POLL_SECONDS = 0.02
"""How often ``.sync`` integrations poll the in-memory ECS/Batch (moto: 0.5 s)."""
CHILD_HISTORIES = 1_000
"""Distributed Map children whose histories are kept for inspection (tests, the demo)."""
DEFAULT_MAP_WORKERS = 64
"""Threads a Distributed Map uses at most, whatever its MaxConcurrency (moto: one per item)."""


class Bindings(Protocol):
    """What the hooks need from the engine that is running."""

    time_scale: float
    map_workers: int
    history_limit: int
    faults: Faults

    def invoke_function(
        self, name: str, payload: bytes, response_headers: dict[str, str]
    ) -> bytes | None: ...

    def start_ecs_task(self, task: Any) -> bool: ...

    def start_batch_job(self, job: Any) -> bool: ...

    def track(self, execution_arn: str, kind: str, ident: tuple[str, ...]) -> None: ...

    def execution_stopped(self, execution_arn: str) -> None: ...


@dataclass(frozen=True)
class Hook:
    name: str
    why: str
    apply: Callable[[], None]


HOOKS: dict[str, Hook] = {}
_lock = threading.RLock()
_installed: set[str] = set()
_bound: list[Bindings] = []


def _hook(name: str, why: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(apply: Callable[[], None]) -> Callable[[], None]:
        HOOKS[name] = Hook(name, why, apply)
        return apply

    return register


def install() -> None:
    """Install every hook (idempotent, process-wide)."""
    with _lock:
        if len(_installed) == len(HOOKS):
            return
        # Import the interpreter's modules first so that module-level names can be replaced.
        import moto.stepfunctions.parser.asl.parse.preprocessor
        import moto.stepfunctions.parser.models  # noqa: F401

        for hook in HOOKS.values():
            if hook.name not in _installed:
                hook.apply()
                _installed.add(hook.name)


def installed() -> frozenset[str]:
    return frozenset(_installed)


def bind(bindings: Bindings) -> None:
    """Route the compute hooks to ``bindings`` (one engine per process at a time)."""
    from moto.moto_api import state_manager

    with _lock:
        if _bound:
            raise RuntimeError("another local engine is already running in this process")
        _bound.append(bindings)
        # Tasks and jobs change state when their process does, never on their own.
        for model in ("ecs::task", "batch::job"):
            state_manager.set_transition(model, {"progression": "manual", "times": sys.maxsize})


def unbind(bindings: Bindings) -> None:
    from moto.moto_api import state_manager

    with _lock:
        if bindings in _bound:
            _bound.remove(bindings)
        if not _bound:
            for model in ("ecs::task", "batch::job"):
                state_manager.unset_transition(model)
            # The interpreter's clients belong to the engine that is going away.
            _clients.clear()


def current() -> Bindings | None:
    return _bound[0] if _bound else None


def time_scale() -> float:
    bindings = current()
    return bindings.time_scale if bindings is not None else 1.0


def _replace_everywhere(name: str, original: Any, replacement: Any) -> None:
    """Rebind ``name`` in every interpreter module that imported ``original`` by name."""
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith("moto.stepfunctions") and getattr(module, name, None) is original:
            setattr(module, name, replacement)


# --------------------------------------------------------------------------------------------
# Clients the interpreter uses to call services


_clients: dict[tuple[str, str, str | None, str | None], Any] = {}


def _client(region: str, service: str) -> Any:
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port

    endpoint = None if botocore_stubber.enabled else f"http://localhost:{moto_server_port()}"
    # boto3 also honours AWS_ENDPOINT_URL, which functions' environments set: a client built
    # under one engine's endpoint must not serve the next engine.
    key = (region, service, endpoint, os.environ.get("AWS_ENDPOINT_URL"))
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _ORIGINAL_BOTO_CLIENT_FOR[0](region=region, service=service)
                _clients[key] = client
    return client


_ORIGINAL_BOTO_CLIENT_FOR: list[Callable[..., Any]] = []


@_hook(
    "client_cache",
    "moto builds a new boto3 client for every task (~3-12 ms); AWS has no such cost. The "
    "interpreter's clients are cached per region, service and endpoint.",
)
def _client_cache() -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    _ORIGINAL_BOTO_CLIENT_FOR.append(original)

    def cached(region: str, service: str, state_credentials: Any = None) -> Any:
        return _client(region, service)

    _replace_everywhere("boto_client_for", original, cached)


def operation_model(service: str, action: str) -> Any:
    """botocore's model of ``service``'s operation ``action`` (snake_case), or None."""
    return _operations(service).get(action)


@functools.cache
def _service_model(service: str) -> Any:
    # One botocore session for every model: each new session re-reads botocore's data files.
    return _botocore_session().get_service_model(service)


@functools.cache
def _botocore_session() -> Any:
    from botocore.session import get_session

    return get_session()


@functools.cache
def _operations(service: str) -> dict[str, Any]:
    from botocore import xform_name

    model = _service_model(service)
    return {xform_name(name): model.operation_model(name) for name in model.operation_names}


@functools.cache
def _modeled_errors(service: str) -> frozenset[str]:
    return frozenset(shape.name for shape in _service_model(service).error_shapes)


def _sdk_error_name(service: str, prefix: str, fallback: str, code: str) -> str:
    """How Step Functions names a service error: the SDK exception class.

    Errors the service model declares keep their code (``Lambda.TooManyRequestsException``,
    ``ECS.ServerException``); anything else surfaces as the service's base exception
    (``ECS.AmazonECSException``, ``Batch.AWSBatchException``, ``Lambda.AWSLambdaException``).
    """
    if code in _modeled_errors(service):
        return f"{prefix}.{code}"
    return f"{prefix}.{fallback}"


def _client_error_cause(service_label: str, error: Any) -> str:
    response = error.response
    code = response.get("Error", {}).get("Code", "")
    message = response.get("Error", {}).get("Message", "")
    metadata = response.get("ResponseMetadata", {})
    details = "; ".join(
        [
            f"Service: {service_label}",
            f"Status Code: {metadata.get('HTTPStatusCode', 400)}",
            f"Error Code: {code}",
            f"Request ID: {metadata.get('RequestId', '')}",
            "Proxy: null",
        ]
    )
    return f"{message} ({details})"


def _task_failure(
    env: Any, task: Any, error: str, cause: str, *, states_error: bool = False
) -> Exception:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    error_name: Any
    if states_error:
        error_name = StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed)
    else:
        error_name = CustomErrorName(error)
    details = TaskFailedEventDetails(error=error, cause=cause)
    if task is not None:
        details["resource"] = task._get_sfn_resource()
        details["resourceType"] = task._get_sfn_resource_type()
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=error_name,
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(taskFailedEventDetails=details),
        )
    )


def _execution_arn(env: Any) -> str:
    return str(env.states.context_object.context_object_data["Execution"]["Id"])


# --------------------------------------------------------------------------------------------
# Lambda


class LambdaThrottledError(Exception):
    """Raised by the engine's Lambda runtime for an armed throttle fault."""


@_hook(
    "lambda_invoke",
    "moto's Lambda without Docker echoes the payload. The engine runs the real handler named "
    "by the template in-process and answers like the Lambda service (payload, "
    "x-amz-function-error: Unhandled with errorType, 429 TooManyRequestsException).",
)
def _lambda_invoke() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.exceptions import JsonRESTError

    class TooManyRequestsError(JsonRESTError):
        code = 429

        def __init__(self) -> None:
            super().__init__("TooManyRequestsException", "Rate Exceeded.")

    original = LambdaSimpleBackend.invoke

    def invoke(  # noqa: PLR0917 - moto's signature
        self: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: dict[str, str],
    ) -> Any:
        bindings = current()
        if bindings is not None:
            payload = body.encode() if isinstance(body, str) else (body or b"{}")
            try:
                result = bindings.invoke_function(function_name, payload, response_headers)
            except LambdaThrottledError:
                raise TooManyRequestsError() from None
            if result is not None:
                return result
        return original(self, function_name, qualifier, body, headers, response_headers)

    LambdaSimpleBackend.invoke = invoke

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_lambda as module,
    )

    def error_cause(client_error: Any) -> tuple[str, str]:
        code = client_error.response["Error"]["Code"]
        error = _sdk_error_name("lambda", "Lambda", "AWSLambdaException", code)
        return error, _client_error_cause("AWSLambda", client_error)

    module.StateTaskServiceLambda._error_cause_from_client_error = staticmethod(error_cause)


# --------------------------------------------------------------------------------------------
# ECS and Batch integrations


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


@_hook(
    "service_casing",
    "ASL writes service parameters in PascalCase; moto 5.2.5 passes them to boto3 unchanged "
    "(getmoto/moto#10076), so ecs:runTask and batch:submitJob fail with States.Runtime. "
    "Requests are converted to the API's casing and responses back, from botocore's shapes; "
    "every RunTask/SubmitJob parameter is accepted (moto drops CapacityProviderStrategy and "
    "StartedBy) and a given StartedBy is kept.",
)
def _service_casing() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_batch as batch_module,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_module,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_ecs as ecs_module,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )

    def normalise_parameters(
        self: Any,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        service = self._get_boto_service_name(boto_service_name)
        operation = operation_model(service, self._get_boto_service_action(service_action_name))
        if operation is not None and operation.input_shape is not None:
            self._to_boto_request(parameters, operation.input_shape)

    def normalise_response(
        self: Any,
        response: Any,
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        service = self._get_boto_service_name(boto_service_name)
        operation = operation_model(service, self._get_boto_service_action(service_action_name))
        if operation is not None and operation.output_shape is not None:
            self._from_boto_response(response, operation.output_shape)
        _epoch_millis(response)

    for cls in (ecs_module.StateTaskServiceEcs, batch_module.StateTaskServiceBatch):
        cls._normalise_parameters = normalise_parameters
        cls._normalise_response = normalise_response

    for module, service, action in (
        (ecs_module, "ecs", "run_task"),
        (batch_module, "batch", "submit_job"),
    ):
        shape = operation_model(service, action).input_shape
        members = {_pascal(member) for member in shape.members}
        module._SUPPORTED_API_PARAM_BINDINGS[action.replace("_", "")] |= members

    def before_eval_execution(
        self: Any,
        env: Any,
        resource_runtime_part: Any,
        raw_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        if self.resource.condition == ResourceCondition.Sync:
            raw_parameters.setdefault("StartedBy", "AWS Step Functions")
        callback_module.StateTaskServiceCallback._before_eval_execution(
            self, env, resource_runtime_part, raw_parameters, state_credentials
        )

    ecs_module.StateTaskServiceEcs._before_eval_execution = before_eval_execution


def _epoch_millis(value: Any) -> None:
    """Timestamps in integration results are epoch milliseconds on AWS (boto3 parses them)."""
    items: Any = value.items() if isinstance(value, dict) else enumerate(value)
    if not isinstance(value, dict | list):
        return
    for key, item in list(items):
        if isinstance(item, datetime.datetime):
            value[key] = int(item.timestamp() * 1000)
        elif isinstance(item, dict | list):
            _epoch_millis(item)


def _ecs_task_failed(task: dict[str, Any]) -> bool:
    containers = task.get("Containers") or []
    return not containers or any(c.get("ExitCode") not in (0,) for c in containers)


@_hook(
    "ecs_sync",
    "ecs:runTask.sync on AWS fails the task with States.TaskFailed (Cause: the stopped task "
    "as JSON) when its container exits non-zero, fails with AmazonECS.Unknown when RunTask "
    "answers with Failures, and names service errors after the SDK exception "
    "(ECS.AmazonECSException ...). moto succeeds on any stopped task and reports the rest "
    "as States.Runtime.",
)
def _ecs_sync() -> None:
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_module,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_ecs as ecs_module,
    )
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    cls = ecs_module.StateTaskServiceEcs

    def eval_service_task(
        self: Any,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        client = _client(resource_runtime_part.region, "ecs")
        action = self._get_boto_service_action()
        response = getattr(client, action)(**normalised_parameters)
        response.pop("ResponseMetadata", None)
        if action != "run_task":
            env.stack.append(response)
            return
        self._normalise_response(response=response, service_action_name="run_task")
        if self._is_integration_pattern() and response.get("Failures"):
            raise _task_failure(env, self, "AmazonECS.Unknown", to_json_str(response))
        tasks = response.get("Tasks") or []
        if not tasks:
            env.stack.append(response)
            return
        bindings = current()
        if bindings is not None:
            for task in tasks:
                bindings.track(_execution_arn(env), "ecs", (task["ClusterArn"], task["TaskArn"]))
        described = client.describe_tasks(
            cluster=tasks[0]["ClusterArn"], tasks=[task["TaskArn"] for task in tasks]
        )
        described.pop("ResponseMetadata", None)
        self._normalise_response(response=described, service_action_name="describe_tasks")
        env.stack.append(described)

    def build_sync_resolver(
        self: Any,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> Callable[[], Any]:
        client = _client(resource_runtime_part.region, "ecs")
        submitted = env.stack.pop()["Tasks"][0]
        task_arn, cluster_arn = submitted["TaskArn"], submitted["ClusterArn"]

        def resolve() -> Any:
            described = client.describe_tasks(cluster=cluster_arn, tasks=[task_arn])
            tasks = described.get("tasks") or []
            if not tasks or tasks[0].get("lastStatus") != "STOPPED":
                return None
            described.pop("ResponseMetadata", None)
            self._normalise_response(response=described, service_action_name="describe_tasks")
            stopped = described["Tasks"][0]
            if _ecs_task_failed(stopped):
                raise _task_failure(
                    env, self, "States.TaskFailed", to_json_str(stopped), states_error=True
                )
            return stopped

        return resolve

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, ClientError):
            code = ex.response["Error"]["Code"]
            error = _sdk_error_name("ecs", "ECS", "AmazonECSException", code)
            failure = _task_failure(env, self, error, _client_error_cause("AmazonECS", ex))
            return failure.failure_event
        return callback_module.StateTaskServiceCallback._from_error(self, env, ex)

    cls._eval_service_task = eval_service_task
    cls._build_sync_resolver = build_sync_resolver
    cls._from_error = from_error


@_hook(
    "batch_sync",
    "batch:submitJob errors are named after the SDK exception on AWS "
    "(Batch.AWSBatchException for unmodeled codes); submitted jobs are tracked so that "
    "StopExecution terminates them.",
)
def _batch_sync() -> None:
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_batch as batch_module,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_module,
    )

    cls = batch_module.StateTaskServiceBatch
    original_eval = cls._eval_service_task

    def eval_service_task(
        self: Any,
        env: Any,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        original_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        bindings = current()
        response = env.stack[-1]
        job_id = response.get("jobId") or response.get("JobId")
        if bindings is not None and job_id:
            bindings.track(_execution_arn(env), "batch", (str(job_id),))

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, ClientError):
            code = ex.response["Error"]["Code"]
            error = _sdk_error_name("batch", "Batch", "AWSBatchException", code)
            failure = _task_failure(env, self, error, _client_error_cause("AWSBatch", ex))
            return failure.failure_event
        return callback_module.StateTaskServiceCallback._from_error(self, env, ex)

    cls._eval_service_task = eval_service_task
    cls._from_error = from_error


@_hook(
    "ecs_capacity_fault",
    "AWS's RunTask answers HTTP 200 with failures (e.g. RESOURCE:MEMORY) and no task when "
    "it cannot place one; moto always places. An armed fault (engine.faults.ecs_capacity) "
    "makes moto answer the same way.",
)
def _ecs_capacity_fault() -> None:
    from moto.core.responses import ActionResult
    from moto.ecs.responses import EC2ContainerServiceResponse

    original = EC2ContainerServiceResponse.run_task

    def run_task(self: Any) -> Any:
        bindings = current()
        reason = bindings.faults.take_ecs_capacity() if bindings is not None else None
        if reason is None:
            return original(self)
        cluster = self._get_param("cluster", "default")
        arn = cluster if cluster.startswith("arn:") else f"cluster/{cluster}"
        return ActionResult({"tasks": [], "failures": [{"arn": arn, "reason": reason}]})

    EC2ContainerServiceResponse.run_task = run_task


@_hook(
    "ecs_tasks_run",
    "moto's ECS tasks never run. Each task started by RunTask runs the worker container's "
    "entrypoint (a local process, or Docker); it is RUNNING until the process exits, then "
    "STOPPED with the real exit code. (Fargate containers may leave memory to the task; moto "
    "requires it per container, so a missing one counts as 0.)",
)
def _ecs_tasks_run() -> None:
    from moto.ecs.models import EC2ContainerServiceBackend

    original_requirements = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def requirements(task_definition: Any) -> Any:
        definitions = []
        memory_keys = ("memory", "memoryReservation", "Memory", "MemoryReservation")
        for given in task_definition.container_definitions:
            if any(given.get(key) is not None for key in memory_keys):
                definitions.append(given)
            else:
                definitions.append({**given, "memoryReservation": 0})
        view = copy.copy(task_definition)
        view.container_definitions = definitions
        return original_requirements(view)

    EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(requirements)

    original = EC2ContainerServiceBackend.run_task

    def run_task(self: Any, *args: Any, **kwargs: Any) -> Any:
        tasks = original(self, *args, **kwargs)
        bindings = current()
        if bindings is not None:
            for task in tasks:
                bindings.start_ecs_task(task)
        return tasks

    EC2ContainerServiceBackend.run_task = run_task


@_hook(
    "batch_jobs_run",
    "moto's Batch without Docker marks a job SUCCEEDED at once. Each job runs the worker "
    "entrypoint; it is RUNNING until the process exits, then SUCCEEDED or FAILED, and "
    "DescribeJobs reports container.exitCode and statusReason like AWS (and does not grow "
    "by one environment entry per describe).",
)
def _batch_jobs_run() -> None:
    from moto.batch.models import Job
    from moto.batch_simple.models import BatchSimpleBackend

    original_mark = BatchSimpleBackend._mark_job_as_finished

    def mark_job(self: Any, include_start_attempt: bool, job: Any) -> None:
        bindings = current()
        if bindings is None or not include_start_attempt:
            original_mark(self, include_start_attempt, job)
            return
        self.backend._jobs[job.job_id] = job
        job.job_started_at = datetime.datetime.now()
        job.log_stream_name = job._stream_name
        job._start_attempt()
        job.status = "RUNNING"
        if not bindings.start_batch_job(job):
            job._mark_stopped(success=True)

    BatchSimpleBackend._mark_job_as_finished = mark_job

    original_describe = Job.describe

    def describe(self: Any) -> dict[str, Any]:
        # moto appends AWS_BATCH_JOB_ID to the job's override list on every describe: with
        # .sync polling, a long job's description would grow past the payload quota.
        overrides = self.container_overrides.get("environment")
        saved = list(overrides) if overrides is not None else None
        try:
            result: dict[str, Any] = original_describe(self)
        finally:
            if saved is not None:
                self.container_overrides["environment"] = saved
        extra = getattr(self, "local_container", None)
        if extra and isinstance(result.get("container"), dict):
            result["container"].update(extra)
        return result

    Job.describe = describe


# --------------------------------------------------------------------------------------------
# The interpreter: JSONPath, definitions, Map states, quotas, time


_INDEFINITE_PATH = re.compile(r"\*|\.\.|\[\?|\[[^\]]*[:,][^\]]*\]")


@functools.lru_cache(maxsize=4096)
def _compiled_path(path: str) -> Any:
    from jsonpath_ng.ext import parse

    return parse(path)


@_hook(
    "jsonpath_definite",
    "A definite path such as $.Containers[0].ExitCode selects one value on AWS; moto returns "
    "it wrapped in a list, so Choice rules on it go wrong. Paths are also compiled once "
    "instead of on every evaluation.",
)
def _jsonpath_definite() -> None:
    from moto.stepfunctions.parser.asl.utils import json_path

    original = json_path.extract_json

    def extract_json(path: str, data: Any) -> Any:
        matches = _compiled_path(path).find(data)
        indefinite = bool(_INDEFINITE_PATH.search(path))
        if not matches:
            if indefinite:
                return []
            raise json_path.NoSuchJsonPathError(json_path=path, data=data)
        if indefinite:
            return [match.value for match in matches]
        return matches[0].value

    json_path.extract_json = extract_json
    _replace_everywhere("extract_json", original, extract_json)


@functools.lru_cache(maxsize=64)
def _adapted(definition: str) -> Adaptation:
    return adapt_definition(definition)


def _attach_batchers(program: Any, batchers: dict[str, ItemBatcher]) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap

    def walk(states: Any) -> None:
        for name, state in states.states.items():
            if isinstance(state, StateMap):
                component = state.iteration_component
                if name in batchers:
                    component.local_item_batcher = batchers[name]
                walk(component._states)
            for branch in getattr(getattr(state, "branches", None), "programs", []) or []:
                walk(branch.states)

    if batchers:
        walk(program.states)


@_hook(
    "definition_adaptation",
    "moto's grammar rejects ItemBatcher, ExecutionType EXPRESS and integer "
    "ToleratedFailurePercentage. Validation and execution use an adapted in-memory copy "
    "(stepburst_local.asl); the stored definition stays the deployed one.",
)
def _definition_adaptation() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original_validate = StepFunctionsParserBackend._validate_definition

    def validate(definition: str) -> None:
        original_validate(definition=_adapted(definition).definition)

    StepFunctionsParserBackend._validate_definition = staticmethod(validate)

    def entrypoint(self: Any) -> Any:
        adaptation = _adapted(self._evaluation_details.state_machine_details.definition)
        program = AmazonStateLanguageParser.parse(adaptation.definition)[0]
        _attach_batchers(program, adaptation.batchers)
        return program

    ExecutionWorker._get_evaluation_entrypoint = entrypoint

    original_environment = ExecutionWorker._get_evaluation_environment

    def evaluation_environment(self: Any) -> Any:
        env = original_environment(self)
        env.event_manager.local_root_env = env
        return env

    ExecutionWorker._get_evaluation_environment = evaluation_environment


@_hook(
    "jsonl_reader",
    "AWS's ItemReader reads JSON Lines (ReaderConfig.InputType JSONL); moto only knows JSON "
    "and CSV. Each non-empty line is one item; a line that is not JSON fails the map run "
    "with States.ItemReaderFailed.",
)
def _jsonl_reader() -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader import (
        item_reader_decl,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_output_transformer.transformer import (  # noqa: E501
        ResourceOutputTransformer,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.reader_config.input_type import (  # noqa: E501
        InputTypeValue,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    if "JSONL" not in InputTypeValue._value2member_map_:
        member = object.__new__(InputTypeValue)
        member._name_ = "JSONL"
        member._value_ = "JSONL"
        InputTypeValue._member_map_["JSONL"] = member
        InputTypeValue._value2member_map_["JSONL"] = member
        InputTypeValue._member_names_.append("JSONL")

    class JsonLinesTransformer(ResourceOutputTransformer):
        def _eval_body(self, env: Any) -> None:
            reader_config = env.stack.pop()
            content: str = env.stack.pop()
            items: list[Any] = []
            for number, line in enumerate(content.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    items.append(json.loads(line))
                except ValueError:
                    error = StatesErrorName(typ=StatesErrorNameType.StatesItemReaderFailed)
                    raise FailureEventException(
                        failure_event=FailureEvent(
                            env=env,
                            error_name=error,
                            event_type=HistoryEventType.TaskFailed,
                            event_details=EventDetails(
                                mapRunFailedEventDetails=MapRunFailedEventDetails(
                                    error=error.error_name,
                                    cause=f"Line {number} of the JSONL input is not JSON.",
                                )
                            ),
                        )
                    ) from None
            env.stack.append(items[: reader_config["MaxItemsValue"]])

    original_factory = item_reader_decl.resource_output_transformer_for

    def transformer_for(input_type: Any) -> Any:
        if input_type.input_type_value.value == "JSONL":
            return JsonLinesTransformer()
        return original_factory(input_type)

    item_reader_decl.resource_output_transformer_for = transformer_for


# -- Distributed Map --------------------------------------------------------------------------


@dataclass
class ChildRun:
    """One child workflow execution of a Map Run, as ResultWriter reports it."""

    index: int
    name: str
    input: Any
    start: datetime.datetime
    status: str = "RUNNING"
    output: Any = None
    error: str | None = None
    cause: str | None = None
    stop: datetime.datetime | None = None
    history: list[dict[str, Any]] | None = None
    """The child's own execution history (kept for the first ``CHILD_HISTORIES`` children)."""


@dataclass
class MapRunState:
    total: int
    tolerated_count: int
    tolerated_percentage: float
    children: list[ChildRun] = field(default_factory=list)
    failed: int = 0
    halted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def exceeded(self) -> bool:
        if self.tolerated_count == 0 and self.tolerated_percentage == 0:
            return self.failed > 0
        over_count = self.tolerated_count > 0 and self.failed > self.tolerated_count
        over_percentage = (
            self.tolerated_percentage > 0
            and self.total > 0
            and self.failed * 100.0 / self.total > self.tolerated_percentage
        )
        return over_count or over_percentage


def _batch_items(items: list[Any], batcher: ItemBatcher, state_input: Any) -> list[Any]:
    from moto.stepfunctions.parser.asl.utils import json_path

    def resolve(value: int | None, path: str | None) -> int | None:
        if path:
            return int(json_path.extract_json(path, state_input))
        return value

    max_items = resolve(batcher.max_items, batcher.max_items_path) or len(items) or 1
    max_bytes = resolve(batcher.max_bytes, batcher.max_bytes_path) or PAYLOAD_LIMIT_BYTES
    batch_input = _resolve_template(batcher.batch_input, state_input)
    batches: list[Any] = []
    current_items: list[Any] = []
    size = 0
    for item in items:
        item_size = len(json.dumps(item, separators=(",", ":")).encode())
        if current_items and (len(current_items) >= max_items or size + item_size > max_bytes):
            batches.append(current_items)
            current_items, size = [], 0
        current_items.append(item)
        size += item_size
    if current_items:
        batches.append(current_items)
    result = []
    for batch in batches:
        job: dict[str, Any] = {"Items": batch}
        if batch_input is not None:
            job["BatchInput"] = batch_input
        result.append(job)
    return result


def _resolve_template(template: Any, state_input: Any) -> Any:
    """Resolve a Parameters-style template (keys ending in ``.$`` are JSONPaths)."""
    from moto.stepfunctions.parser.asl.utils import json_path

    if isinstance(template, dict):
        resolved: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$") and isinstance(value, str):
                resolved[key[:-2]] = json_path.extract_json(value, state_input)
            else:
                resolved[key] = _resolve_template(value, state_input)
        return resolved
    if isinstance(template, list):
        return [_resolve_template(value, state_input) for value in template]
    return template


@_hook(
    "distributed_map",
    "moto's Distributed Map starts one thread per item, recurses once per item "
    "(RecursionError past ~1,000), shares one history between children, ignores "
    "ToleratedFailurePercentage/Count (failed children become null and the Map succeeds) "
    "and has no ItemBatcher. Children now run on a bounded pool, iteratively, each with its "
    "own history; the run fails with States.ExceedToleratedFailureThreshold above the "
    "tolerance; items are batched like AWS.",
)
def _distributed_map() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as component_module,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (  # noqa: E501
        distributed_item_processor_worker as worker_module,
    )

    component_module.DistributedIterationComponent._map_run = _map_run
    worker_module.DistributedItemProcessorWorker._eval_job = _eval_child
    worker_module.DistributedItemProcessorWorker._eval_pool = _eval_child_pool


def _map_run(self: Any, env: Any, eval_input: Any) -> None:
    """A Map Run: read (and batch) the items, run the children on a bounded pool, apply the
    tolerated failure threshold."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.job import (
        JobPool,
    )

    items: list[Any] = env.stack.pop()
    record = eval_input.map_run_record
    state_input = env.stack[-1] if env.stack else env.states.get_input()
    batcher: ItemBatcher | None = getattr(self, "local_item_batcher", None)
    if batcher is not None:
        if eval_input.item_selector is not None:
            items = [
                _select_item(env, eval_input.item_selector, state_input, index, item)
                for index, item in enumerate(items)
            ]
        items = _batch_items(items, batcher, state_input)
    run = MapRunState(
        total=len(items),
        tolerated_count=int(eval_input.tolerated_failure_count or 0),
        tolerated_percentage=float(eval_input.tolerated_failure_percentage or 0.0),
    )
    record.local_run = run
    job_pool = JobPool(job_program=self._get_iteration_program(), job_inputs=items)
    bindings = current()
    limit = bindings.map_workers if bindings is not None else DEFAULT_MAP_WORKERS
    concurrency = record.max_concurrency or len(items)
    for _ in range(max(0, min(concurrency, len(items), limit))):
        worker = self._create_worker(env=env, eval_input=eval_input, job_pool=job_pool)
        if batcher is not None:
            worker._item_selector = None
            worker._parameters = None
        threading.Thread(target=worker.eval, daemon=True).start()
    job_pool.await_jobs()
    worker_exception = job_pool.get_worker_exception()
    if worker_exception is not None:
        raise worker_exception
    if run.exceeded() and env.is_running():
        raise _tolerated_failure_exceeded(env)
    env.stack.append([closed.job_output for closed in job_pool.get_closed_jobs()])


def _tolerated_failure_exceeded(env: Any) -> Exception:
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    error = StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold)
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=error,
            event_type=HistoryEventType.MapRunFailed,
            event_details=EventDetails(
                mapRunFailedEventDetails=MapRunFailedEventDetails(
                    error=error.error_name,
                    cause="The specified tolerated failure threshold was exceeded",
                )
            ),
        )
    )


def _eval_child(self: Any, env: Any, job: Any) -> None:
    """One child execution of a Map Run, with its own history, recorded for ResultWriter."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
    from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData

    record = self._map_run_record
    for counter in (record.item_counter, record.execution_counter):
        counter.total.count()
        counter.running.count()
    child = ChildRun(
        index=job.job_index,
        name=str(uuid.uuid4()),
        input=job.job_input,
        start=datetime.datetime.now(tz=datetime.UTC),
    )
    # Each child is its own execution on AWS, with its own history and quota.
    env.event_manager = EventManager()
    env.event_manager.local_root_env = env
    try:
        env.states.context_object.context_object_data["Map"] = MapData(
            Item=ItemData(Index=job.job_index, Value=job.job_input)
        )
        env.states.reset(job.job_input)
        env.stack.append(env.states.get_input())
        self._eval_input(env_frame=env)
        child.input = env.states.get_input()
        job.job_program.eval(env)
        _record_outcome(child, env)
    except FailureEventException as failure:
        child.status = "FAILED"
        child.error, child.cause = failure.extract_error_cause_pair() or (None, None)
    except Exception as exc:  # a bug in a hook or the interpreter: the child fails
        LOG.exception("map child %s crashed", job.job_index)
        child.status = "FAILED"
        child.error, child.cause = "States.Runtime", f"{type(exc).__name__}: {exc}"
    finally:
        _finish_child(record, child, env)
        job.job_output = child.output


def _record_outcome(child: ChildRun, env: Any) -> None:
    from moto.stepfunctions.parser.asl.eval.program_state import (
        ProgramError,
        ProgramStopped,
        ProgramTimedOut,
    )

    ended = env.program_state()
    if isinstance(ended, ProgramError):
        child.status = "FAILED"
        child.error = (ended.error or {}).get("error")
        child.cause = (ended.error or {}).get("cause")
    elif isinstance(ended, ProgramStopped):
        child.status = "ABORTED"
    elif isinstance(ended, ProgramTimedOut):
        child.status = "TIMED_OUT"
    else:
        child.status = "SUCCEEDED"
        child.output = env.states.get_input()


def _finish_child(record: Any, child: ChildRun, env: Any) -> None:
    child.stop = datetime.datetime.now(tz=datetime.UTC)
    if child.index < CHILD_HISTORIES:
        child.history = [
            {**event, "type": str(getattr(event["type"], "value", event["type"]))}
            for event in env.event_manager.get_event_history()
        ]
    for counter in (record.item_counter, record.execution_counter):
        counter.running.offset(-1)
        if child.status == "SUCCEEDED":
            counter.succeeded.count()
            counter.results_written.count()
        elif child.status == "ABORTED":
            counter.aborted.count()
        elif child.status == "TIMED_OUT":
            counter.timed_out.count()
        else:
            counter.failed.count()
    run: MapRunState = record.local_run
    with run.lock:
        run.children.append(child)
        if child.status != "SUCCEEDED":
            run.failed += 1
            if run.exceeded():
                run.halted = True


def _eval_child_pool(self: Any, job: Any, worker_frame: Any) -> None:
    """A worker's loop over the pool's jobs (iterative: moto recurses once per job)."""
    run: MapRunState = self._map_run_record.local_run
    while job is not None:
        job_frame = worker_frame.open_inner_frame()
        self._eval_job(env=job_frame, job=job)
        worker_frame.delete_frame(job_frame)
        halted = self.stopped() or run.halted
        next_job = None if halted else self._job_pool.next_job()
        if next_job is None:
            if halted:
                _drain_pending(self._job_pool, run)
            self._env.delete_frame(worker_frame)
        self._job_pool.close_job(job)
        job = next_job
    self._env.delete_frame(worker_frame)


def _drain_pending(pool: Any, run: MapRunState) -> None:
    """Close the jobs a halted Map Run never starts; ResultWriter reports them PENDING."""
    while True:
        pending = pool.next_job()
        if pending is None:
            return
        with run.lock:
            run.children.append(
                ChildRun(
                    index=pending.job_index,
                    name="",
                    input=pending.job_input,
                    start=datetime.datetime.now(tz=datetime.UTC),
                    status="PENDING",
                )
            )
        pending.job_output = None
        pool.close_job(pending)


def _select_item(env: Any, item_selector: Any, state_input: Any, index: int, item: Any) -> Any:
    from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData

    frame = env.open_inner_frame()
    try:
        frame.states.context_object.context_object_data["Map"] = MapData(
            Item=ItemData(Index=index, Value=item)
        )
        frame.states.reset(input_value=state_input)
        frame.stack.append(state_input)
        item_selector.eval(frame)
        return frame.stack[-1]
    finally:
        env.delete_frame(frame)


@_hook(
    "inline_map_iterative",
    "moto's inline Map workers recurse once per item and hit RecursionError on long item "
    "lists at low MaxConcurrency; AWS has no such limit. The worker loop is iterative.",
)
def _inline_map_iterative() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker import (  # noqa: E501
        IterationWorker,
    )

    def eval_pool(self: Any, job: Any, worker_frame: Any) -> None:
        while True:
            if job is None:
                self._env.close_frame(worker_frame)
                return
            job_frame = worker_frame.open_inner_frame()
            self._eval_job(env=job_frame, job=job)
            worker_frame.close_frame(job_frame)
            if isinstance(job.job_output, Exception) or self.stopped():
                self._env.close_frame(worker_frame)
                self._job_pool.close_job(job)
                return
            next_job = self._job_pool.next_job()
            if next_job is None:
                worker_frame.event_history_context.source_event_id = (
                    job_frame.event_history_context.last_published_event_id
                )
                self._env.close_frame(worker_frame)
                self._job_pool.close_job(job)
                return
            self._job_pool.close_job(job)
            job = next_job

    IterationWorker._eval_pool = eval_pool


def _iso(moment: datetime.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _result_entry(child: ChildRun, record: Any) -> dict[str, Any]:
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    execution_arn = (
        record.map_run_arn.replace(":mapRun:", ":execution:").rsplit(":", 1)[0] + f":{child.name}"
    )
    entry: dict[str, Any] = {
        "ExecutionArn": execution_arn,
        "Input": to_json_str(child.input),
        "InputDetails": {"Included": True},
        "Name": child.name,
        "RedriveCount": 0,
        "RedriveStatus": "NOT_REDRIVABLE",
        "StartDate": _iso(child.start),
        "StateMachineArn": record.map_state_machine_arn,
        "Status": child.status,
        "StopDate": _iso(child.stop),
    }
    if child.status == "SUCCEEDED":
        entry["Output"] = to_json_str(child.output)
        entry["OutputDetails"] = {"Included": True}
    else:
        entry["Error"] = child.error or ""
        entry["Cause"] = child.cause or ""
    return entry


@_hook(
    "result_writer",
    "AWS's ResultWriter writes SUCCEEDED_0.json / FAILED_0.json / PENDING_0.json next to "
    "manifest.json and lists them in it, with Parameters (Prefix.$) read from the state "
    "input; moto writes only an empty manifest and reads Prefix.$ from the Map's outputs.",
)
def _result_writer() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer import (
        result_writer_decl,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (  # noqa: E501
        resource_eval_s3,
    )

    def put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters = env.stack.pop()
        env.stack.pop()  # the Map's outputs: written per child below
        s3 = _client(resource_runtime_part.region, "s3")
        record = env.map_run_record_pool_manager.get_all()[-1]
        run: MapRunState | None = getattr(record, "local_run", None)
        bucket = parameters["Bucket"]
        prefix = parameters.get("Prefix", "")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        base = f"{prefix}{record.map_run_arn.split(':')[-1]}/"
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        children = sorted(run.children, key=lambda c: c.index) if run is not None else []
        groups = {
            "SUCCEEDED": [c for c in children if c.status == "SUCCEEDED"],
            "FAILED": [c for c in children if c.status not in ("SUCCEEDED", "PENDING")],
            "PENDING": [c for c in children if c.status == "PENDING"],
        }
        for status, group in groups.items():
            if not group:
                continue
            body = json.dumps([_result_entry(child, record) for child in group]).encode()
            key = f"{base}{status}_0.json"
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
        manifest = {
            "DestinationBucket": bucket,
            "MapRunArn": record.map_run_arn,
            "ResultFiles": files,
        }
        manifest_key = f"{base}manifest.json"
        s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest).encode())
        env.stack.append(
            {
                "MapRunArn": record.map_run_arn,
                "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key},
            }
        )

    resource_eval_s3.ResourceEvalS3._handle_put_object = staticmethod(put_object)

    def eval_body(self: Any, env: Any) -> None:
        # Parameters (Prefix.$ ...) read the state input on AWS; moto reads the Map's outputs.
        outputs = env.stack.pop()
        self.parargs.eval(env=env)
        parameters = env.stack.pop()
        env.stack.append(outputs)
        env.stack.append(parameters)
        self.resource_eval.eval_resource(env=env)

    result_writer_decl.ResultWriter._eval_body = eval_body


@_hook(
    "payload_quota",
    "AWS allows state input/output up to 256 KiB inclusive and fails larger ones with "
    "States.DataLimitExceeded (moto fails at exactly 256 KiB too); StartExecution rejects "
    "an input over 256 KiB (moto takes any size).",
)
def _payload_quota() -> None:
    from moto.stepfunctions.parser import quotas
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    original = quotas.is_within_size_quota

    def is_within_size_quota(value: Any) -> bool:
        text = value if isinstance(value, str) else to_json_str(value)
        return len(text.encode("utf-8")) <= PAYLOAD_LIMIT_BYTES

    quotas.is_within_size_quota = is_within_size_quota
    _replace_everywhere("is_within_size_quota", original, is_within_size_quota)

    from moto.stepfunctions.exceptions import ValidationException
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original_start = StepFunctionsParserBackend.start_execution

    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: Any = None,
        execution_input: Any = None,
        trace_header: Any = None,
    ) -> Any:
        if execution_input is not None and len(execution_input) > PAYLOAD_LIMIT_BYTES:
            raise ValidationException(
                "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                f"Member must have length less than or equal to {PAYLOAD_LIMIT_BYTES}"
            )
        return original_start(self, state_machine_arn, name, execution_input, trace_header)

    StepFunctionsParserBackend.start_execution = start_execution


@_hook(
    "history_quota",
    "A Standard execution fails once its history passes 25,000 events on AWS; moto's "
    "history grows without bound (and every Distributed Map child counts on its own). An "
    "aborted execution also stays ABORTED (moto lets a later state error turn it FAILED).",
)
def _history_quota() -> None:
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    original = EventManager.add_event
    original_set_error = Environment.set_error

    def set_error(self: Any, error: Any) -> None:
        # An aborted execution stays aborted, and once the quota ended the execution, later
        # errors of the interrupted state do not replace the reason.
        if isinstance(self._program_state, ProgramStopped):
            return
        original_set_error(self, getattr(self, "local_sticky_error", None) or error)

    Environment.set_error = set_error

    def add_event(self: Any, *args: Any, **kwargs: Any) -> int:
        event_id: int = original(self, *args, **kwargs)
        root = getattr(self, "local_root_env", None)
        if root is not None and not getattr(self, "local_limit_hit", False):
            bindings = current()
            limit = bindings.history_limit if bindings is not None else HISTORY_EVENT_LIMIT
            if event_id >= limit:
                self.local_limit_hit = True
                details = ExecutionFailedEventDetails(
                    error="States.Runtime",
                    cause=f"The execution reached the maximum number of history events ({limit}).",
                )
                root.local_sticky_error = details
                root.set_error(details)
        return event_id

    EventManager.add_event = add_event


class _ScaledTime:
    """``time`` for the retrier: sleeps scale with the engine's ``time_scale``."""

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) * time_scale())

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@_hook(
    "time_scale",
    "Retry intervals and Wait states are real seconds; tests and the demo run them scaled "
    "by the engine's time_scale. (Only inside the engine: the definition is unchanged.)",
)
def _time_scale() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    retrier_decl.time = _ScaledTime()

    def wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        deadline = time.monotonic() + max(0.0, float(wait_seconds)) * time_scale()
        while env.is_running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    WaitFunction._wait_interval = wait_interval


@_hook(
    "sync_poll",
    "moto polls .sync integrations every 0.5 s; the local services answer at once, so the "
    "engine polls every 20 ms.",
)
def _sync_poll() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback,
    )

    state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = SYNC_POLL_SECONDS


@_hook(
    "stop_execution",
    "StopExecution stops the ECS tasks and Batch jobs a .sync state started, as AWS does; "
    "moto only stops the interpreter.",
)
def _stop_execution() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.stop_execution

    def stop_execution(self: Any, execution_arn: str) -> Any:
        result = original(self, execution_arn)
        bindings = current()
        if bindings is not None:
            bindings.execution_stopped(execution_arn)
        return result

    StepFunctionsParserBackend.stop_execution = stop_execution


# --------------------------------------------------------------------------------------------
# Triggers: S3 -> EventBridge -> Step Functions


_sequencer = itertools.count(1)


def s3_object_created_event(
    *,
    account_id: str,
    region: str,
    bucket: str,
    key: str,
    size: int,
    etag: str,
    version_id: str | None,
    reason: str,
    detail_type: str = "Object Created",
) -> dict[str, Any]:
    """The event S3 sends to EventBridge for a new object, field for field as on AWS.

    The object key is URL-encoded the way S3 encodes keys in event notifications (form
    encoding: a space becomes ``+``, ``+`` becomes ``%2B``; ``/`` is kept), so consumers
    decode it with ``urllib.parse.unquote_plus`` as on AWS.
    """
    now = datetime.datetime.now(tz=datetime.UTC).replace(microsecond=0)
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "etag": etag}
    if version_id is not None:
        obj["version-id"] = version_id
    obj["sequencer"] = f"{time.time_ns() // 1000:012X}{next(_sequencer):06X}"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": account_id,
        "time": now.isoformat().replace("+00:00", "Z"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": secrets.token_hex(8).upper(),
            "requester": account_id,
            "source-ip-address": "127.0.0.1",
            "reason": reason,
        },
    }


_S3_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}


@_hook(
    "s3_eventbridge_event",
    "moto's S3 -> EventBridge event differs from AWS's (eTag for etag, a numeric time, reason "
    "ObjectCreated instead of PutObject, a fixed sequencer, a raw key, every event bus) and "
    "every PutObject also sends a tagging event; CopyObject and multipart uploads send two "
    "Object Created. One Object Created is built as AWS builds it and sent to the default "
    "bus only; other S3 events are not sent.",
)
def _s3_eventbridge_event() -> None:
    from moto.events.models import events_backends
    from moto.s3 import notifications

    def send(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        if not event_name.startswith("s3:ObjectCreated:"):
            # moto also reports its internal tagging of every new object; AWS sends Object
            # Tags Added only for PutObjectTagging, and this project needs Object Created only.
            return
        if event_name == "s3:ObjectCreated:Put" and getattr(_s3_state, "composite", False):
            return  # the inner PutObject of a CopyObject/CompleteMultipartUpload
        try:
            versioned = bool(bucket.is_versioned)
            event = s3_object_created_event(
                account_id=account_id,
                region=bucket.region_name,
                bucket=bucket.name,
                key=key.name,
                size=int(key.size),
                etag=key.etag.replace('"', ""),
                version_id=key.version_id if versioned else None,
                reason=_S3_REASONS.get(event_name, event_name.rsplit(":", 1)[-1]),
                detail_type=notifications._detail_type(event_name),
            )
            bus = events_backends[account_id][bucket.region_name].event_buses.get("default")
            if bus is None:
                return
            for rule in list(bus.rules.values()):
                # moto's own target transformers need fields S3 events do not have.
                rule.send_to_targets(event, transform_input=False)
        except Exception:  # delivery is asynchronous on AWS: an upload never fails on it
            LOG.exception("S3 -> EventBridge delivery failed")

    notifications._send_event_bridge_message = send

    # moto's CopyObject and CompleteMultipartUpload store the object with its own PutObject,
    # which sends a second Object Created; AWS sends one, with reason CopyObject or
    # CompleteMultipartUpload.
    from moto.s3.models import S3Backend

    for name in ("copy_object", "complete_multipart_upload"):
        setattr(S3Backend, name, _composite(getattr(S3Backend, name)))


_s3_state = threading.local()


def _composite(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        outer = getattr(_s3_state, "composite", False)
        _s3_state.composite = True
        try:
            return method(*args, **kwargs)
        finally:
            _s3_state.composite = outer

    return wrapper


@_hook(
    "eventbridge_states_target",
    "moto's EventBridge cannot target a state machine (NotImplementedError, swallowed by "
    "S3). A matching rule starts an execution with the (transformed) event as input and an "
    "explicit name (without one moto names every execution 'None'). Disabled rules do not "
    "fire.",
)
def _eventbridge_states_target() -> None:
    from moto.events.models import Rule
    from moto.events.utils import EventTemplateParser
    from moto.stepfunctions.parser.asl.utils import json_path
    from moto.stepfunctions.responses import get_backend

    original = Rule.send_to_targets

    def send_to_targets(self: Any, event: dict[str, Any], transform_input: bool = True) -> None:
        if getattr(self, "state", "ENABLED") != "ENABLED":
            return
        if not self.event_pattern.matches_event(event):
            return
        others = []
        for target in self.targets:
            arn = str(target.get("Arn", ""))
            if ":states:" not in arn:
                others.append(target)
                continue
            payload = _target_input(target, event, EventTemplateParser, json_path)
            parts = arn.split(":")
            backend = get_backend(parts[4], parts[3])
            name = str(event.get("id") or uuid.uuid4())
            # EventBridge never reports a target's failure to the publisher (on AWS it retries,
            # then dead-letters); the put that triggered this must not fail either.
            try:
                backend.start_execution(arn, name=name, execution_input=json.dumps(payload))
            except Exception as error:
                LOG.exception("EventBridge could not start %s: %s", arn, error)
        if others:
            clone = copy.copy(self)
            clone.targets = others
            original(clone, event, transform_input)

    Rule.send_to_targets = send_to_targets


def _target_input(target: dict[str, Any], event: dict[str, Any], parser: Any, paths: Any) -> Any:
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        return paths.extract_json(target["InputPath"], event)
    transformer = target.get("InputTransformer")
    if transformer:
        rendered = parser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event={"ingestion-time": event.get("time"), **event},
        )
        return json.loads(rendered) if isinstance(rendered, str) else rendered
    return event


def describe() -> Iterator[tuple[str, str]]:
    """(name, why) of every hook, for documentation and ``stepburst local hooks``."""
    for hook in HOOKS.values():
        yield hook.name, hook.why
