"""The interpreter: service parameter casing, JSONPath, definition adaptation, time, stops."""

from __future__ import annotations

import datetime
import functools
import re
import time
import weakref
from collections.abc import Callable
from typing import Any

from jsonpath_ng import parser as jsonpath_parser

from stepburst_local.asl import Adaptation, ItemBatcher, adapt_definition
from stepburst_local.binding import current, time_scale
from stepburst_local.moto_internals import (
    EXTRACT_JSON_IMPORTERS,
    AmazonStateLanguageParser,
    Preprocessor,
    ResourceCondition,
    StateMap,
    StateTaskServiceBatch,
    StateTaskServiceCallback,
    StateTaskServiceEcs,
    StepFunctionsParserBackend,
    WaitFunction,
    json_path,
    result_path,
    retrier_decl,
    state_task_service_callback,
)
from stepburst_local.patching import Hook, patch, patch_value
from stepburst_local.shapes import operation_model

SYNC_POLL_SECONDS = 0.02
"""How often ``.sync`` integrations poll the in-memory ECS/Batch (moto: 0.5 s)."""

# -- service parameter casing -------------------------------------------------------------------

service_casing = Hook(
    "service_casing",
    why="ASL writes service parameters in PascalCase; moto 5.2.5 passes them to boto3 "
    "unchanged, so ecs:runTask and batch:submitJob fail with States.Runtime. Requests are "
    "converted to the API's casing and responses back, from botocore's shapes; every "
    "RunTask/SubmitJob parameter is accepted (moto drops CapacityProviderStrategy and "
    "StartedBy) and a given StartedBy is kept.",
    upstream="getmoto/moto#10076 (fix proposed in getmoto/moto#10094, unreleased)",
)


def _normalise_parameters(
    self: Any,
    parameters: dict[str, Any],
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    """Replaces moto's no-op (getmoto/moto#10076): PascalCase parameters to the API's casing."""
    service = self._get_boto_service_name(boto_service_name)
    operation = operation_model(service, self._get_boto_service_action(service_action_name))
    if operation is not None and operation.input_shape is not None:
        self._to_boto_request(parameters, operation.input_shape)


def _normalise_response(
    self: Any,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    """Replaces moto's no-op (getmoto/moto#10076): the API's response in PascalCase, with
    timestamps in epoch milliseconds as Step Functions returns them."""
    service = self._get_boto_service_name(boto_service_name)
    operation = operation_model(service, self._get_boto_service_action(service_action_name))
    if operation is not None and operation.output_shape is not None:
        self._from_boto_response(response, operation.output_shape)
    _epoch_millis(response)


def _supported_parameters(original: Callable[[Any], set[str] | None], self: Any) -> Any:
    """moto's list of the parameters it passes on, plus every member of the API's request."""
    supported = original(self)
    if supported is None:
        return None
    operation = operation_model(self._get_boto_service_name(), self._get_boto_service_action())
    if operation is None or operation.input_shape is None:
        return supported
    return supported | {name[:1].upper() + name[1:] for name in operation.input_shape.members}


for _integration in (StateTaskServiceEcs, StateTaskServiceBatch):
    patch(service_casing, _integration, "_normalise_parameters", wraps=False)(_normalise_parameters)
    patch(service_casing, _integration, "_normalise_response", wraps=False)(_normalise_response)
    patch(service_casing, _integration, "_get_supported_parameters")(_supported_parameters)


@patch(service_casing, StateTaskServiceEcs, "_before_eval_execution", wraps=False)
def _ecs_before_eval_execution(
    self: Any,
    env: Any,
    resource_runtime_part: Any,
    raw_parameters: dict[str, Any],
    state_credentials: Any,
) -> None:
    """Replaces moto's, which overwrites a given StartedBy before the TaskScheduled event
    records the parameters: a .sync task is started by "AWS Step Functions" unless the
    definition names someone else."""
    if self.resource.condition == ResourceCondition.Sync:
        raw_parameters.setdefault("StartedBy", "AWS Step Functions")
    StateTaskServiceCallback._before_eval_execution(
        self, env, resource_runtime_part, raw_parameters, state_credentials
    )


def _epoch_millis(value: Any) -> None:
    """Timestamps in integration results are epoch milliseconds on AWS (boto3 parses them)."""
    if not isinstance(value, dict | list):
        return
    items: Any = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in list(items):
        if isinstance(item, datetime.datetime):
            value[key] = int(item.timestamp() * 1000)
        elif isinstance(item, dict | list):
            _epoch_millis(item)


# -- JSONPath ----------------------------------------------------------------------------------

jsonpath_definite = Hook(
    "jsonpath_definite",
    why="A definite path such as $.Containers[0].ExitCode selects one value on AWS; moto "
    "returns it wrapped in a list, so Choice rules on it go wrong. Paths are also compiled "
    "once instead of on every evaluation (ResultPath's too: moto parses it again for every "
    "state it ends).",
    upstream="no upstream issue found in moto (the same bug in the interpreter moto ported: "
    "localstack/localstack#11321)",
)

_INDEFINITE_PATH = re.compile(r"\*|\.\.|\[\?|\[[^\]]*[:,][^\]]*\]")


@functools.lru_cache(maxsize=4096)
def _compiled_path(path: str) -> Any:
    from jsonpath_ng.ext.parser import parse

    return parse(path)


@patch(
    jsonpath_definite,
    json_path,
    "extract_json",
    wraps=False,
    also_bound_in=EXTRACT_JSON_IMPORTERS,
)
def extract_json(path: str, data: Any) -> Any:
    """Replaces moto's, which decides between one value and a list from the shape of the
    matches (so ``$.a[0].b`` comes back as ``[value]``): a definite path (no wildcard,
    slice, union, filter or descent) selects one value, any other a list."""
    matches = _compiled_path(path).find(data)
    indefinite = bool(_INDEFINITE_PATH.search(path))
    if not matches:
        if indefinite:
            return []
        raise json_path.NoSuchJsonPathError(json_path=path, data=data)
    if indefinite:
        return [match.value for match in matches]
    return matches[0].value


@functools.lru_cache(maxsize=4096)
def _compiled_result_path(path: str) -> Any:
    # jsonpath_ng's plain parser, as ResultPath uses it; a parsed path is never modified.
    return jsonpath_parser.parse(path)


patch_value(
    jsonpath_definite, result_path, "parse", _compiled_result_path, was=jsonpath_parser.parse
)


# -- definitions moto's grammar rejects ---------------------------------------------------------

definition_adaptation = Hook(
    "definition_adaptation",
    why="moto's grammar rejects ItemBatcher, ExecutionType EXPRESS, integer "
    "ToleratedFailurePercentage and ReaderConfig.InputType JSONL. Validation and execution "
    "parse an adapted in-memory copy (stepburst_local.asl) and the Map states get back what "
    "was taken out; the stored definition stays the deployed one. Each definition is "
    "parsed once; every start builds its program from that parse tree.",
    upstream="no upstream issue found",
)

_batchers: weakref.WeakKeyDictionary[Any, ItemBatcher] = weakref.WeakKeyDictionary()
_json_lines_transformers: weakref.WeakSet[Any] = weakref.WeakSet()
_express_components: weakref.WeakSet[Any] = weakref.WeakSet()


def item_batcher(iteration_component: Any) -> ItemBatcher | None:
    """The ItemBatcher the adaptation took out of a Distributed Map (None if it had none)."""
    return _batchers.get(iteration_component)


def runs_express_children(iteration_component: Any) -> bool:
    """Whether a Distributed Map's children are EXPRESS in the deployed definition."""
    return iteration_component in _express_components


def reads_json_lines(transformer: Any) -> bool:
    """Whether an ItemReader's output transformer reads JSONL (the deployed InputType)."""
    return transformer in _json_lines_transformers


@functools.lru_cache(maxsize=64)
def _adapted(definition: str) -> Adaptation:
    return adapt_definition(definition)


_PARSE_TREES_KEPT = 64
_parse_trees: dict[str, Any] = {}


@patch(definition_adaptation, AmazonStateLanguageParser, "parse")
def parse(original: Callable[[str], tuple[Any, Any]], definition: str) -> tuple[Any, Any]:
    try:
        adaptation = _adapted(definition)
    except ValueError:  # not JSON: moto's parser reports it as AWS would
        return original(definition)
    # moto parses the definition again at every start (ANTLR: ~0.3 s for the coordinator);
    # a parse tree is only read, so each start builds its program from the one tree.
    tree = _parse_trees.get(adaptation.definition)
    if tree is None:
        program, tree = original(adaptation.definition)  # raises on a syntax error
        if len(_parse_trees) >= _PARSE_TREES_KEPT:
            _parse_trees.clear()
        _parse_trees[adaptation.definition] = tree
    else:
        program = Preprocessor().visit(tree)
    _restore_map_fields(program.states, adaptation)
    return program, tree


def _restore_map_fields(states: Any, adaptation: Adaptation) -> None:
    for name, state in states.states.items():
        if isinstance(state, StateMap):
            component = state.iteration_component
            if name in adaptation.batchers:
                _batchers[component] = adaptation.batchers[name]
            if name in adaptation.express_children:
                _express_components.add(component)
            reader = state.item_reader
            if name in adaptation.json_lines and reader is not None:
                _json_lines_transformers.add(reader.resource_output_transformer)
            _restore_map_fields(component._states, adaptation)
        for branch in getattr(getattr(state, "branches", None), "programs", []) or []:
            _restore_map_fields(branch.states, adaptation)


# -- time ------------------------------------------------------------------------------------

time_scale_hook = Hook(
    "time_scale",
    why="Retry intervals and Wait states are real seconds; tests and the demo run them scaled "
    "by the engine's time_scale. (Only inside the engine: the definition is unchanged.)",
    upstream="no upstream issue found (a feature of the engine, not a moto bug)",
)


class _ScaledTime:
    """``time`` for the retrier: sleeps scale with the engine's ``time_scale``."""

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) * time_scale())

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


patch_value(time_scale_hook, retrier_decl, "time", _ScaledTime(), was=time)


@patch(time_scale_hook, WaitFunction, "_wait_interval", wraps=False)
def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
    """Replaces moto's, which counts the seconds waited in whole seconds and waits again for
    the rest: a scaled wait (a fraction of a second) would never end. Ends early when the
    execution stops."""
    deadline = time.monotonic() + max(0.0, float(wait_seconds)) * time_scale()
    while env.is_running():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        env.program_state_event.wait(remaining)


sync_poll = Hook(
    "sync_poll",
    why="moto polls .sync integrations every 0.5 s; the local services answer at once, so the "
    "engine polls every 20 ms.",
    upstream="no upstream issue found",
)

patch_value(
    sync_poll,
    state_task_service_callback,
    "_DELAY_SECONDS_SYNC_CONDITION_CHECK",
    SYNC_POLL_SECONDS,
    was=0.5,
)


# -- StopExecution ----------------------------------------------------------------------------

stop_execution = Hook(
    "stop_execution",
    why="StopExecution stops the ECS tasks and Batch jobs a .sync state started, as AWS does; "
    "moto only stops the interpreter. A .sync state that a stop interrupted before it read "
    "its timeout does not start moto's wait for a task token (with the state's input as its "
    "timeout, the wait's thread dies with a TypeError).",
    upstream="no upstream issue found",
)


@patch(stop_execution, StepFunctionsParserBackend, "stop_execution")
def _stop_execution(original: Callable[..., Any], self: Any, execution_arn: str) -> Any:
    # https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-sync
    result = original(self, execution_arn)
    bindings = current()
    if bindings is not None:
        bindings.execution_stopped(execution_arn)
    return result


@patch(stop_execution, StateTaskServiceCallback, "_eval_sync")
def _eval_sync(  # noqa: PLR0917 - moto's signature
    original: Callable[..., Any],
    self: Any,
    env: Any,
    sync_resolver: Any,
    timeout_seconds: Any,
    callback_endpoint: Any,
    heartbeat_endpoint: Any,
) -> Any:
    # A stop before the state evaluated TimeoutSeconds left moto popping the wrong value
    # (its evaluation was pruned); moto's own loop would not poll a stopped execution anyway.
    if not env.is_running():
        return None
    return original(
        self, env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint
    )


HOOKS = (
    service_casing,
    jsonpath_definite,
    definition_adaptation,
    time_scale_hook,
    sync_poll,
    stop_execution,
)
