"""Map states: the Distributed Map run (ItemReader, ItemBatcher, children, tolerance,
ResultWriter) and inline Map workers that do not recurse."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from stepburst_local.binding import map_workers
from stepburst_local.moto_internals import (
    DistributedIterationComponent,
    HistoryEventType,
    IterationWorker,
    ResourceOutputTransformerJson,
    ResultWriter,
    ResultWriterResourceEvalS3,
    StatesErrorNameType,
    stepfunctions_parser_backends,
)
from stepburst_local.patches.clients import client
from stepburst_local.patches.failures import map_run_failed
from stepburst_local.patches.interpreter import (
    item_batcher,
    reads_json_lines,
    runs_express_children,
)
from stepburst_local.patches.map_run import ChildRun, DistributedMapRun
from stepburst_local.patching import Hook, patch

jsonl_reader = Hook(
    "jsonl_reader",
    why="AWS's ItemReader reads JSON Lines (ReaderConfig.InputType JSONL); moto only knows "
    "JSON and CSV. The definition adaptation gives the parser JSON; those readers read one "
    "item per non-empty line, and a line that is not JSON fails the map run with "
    "States.ItemReaderFailed.",
    upstream="no upstream issue found",
)


@patch(jsonl_reader, ResourceOutputTransformerJson, "_eval_body")
def _read_items(original: Callable[[Any, Any], None], self: Any, env: Any) -> None:
    # https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html
    if not reads_json_lines(self):
        original(self, env)
        return
    reader_config = env.stack.pop()
    content: str = env.stack.pop()
    items: list[Any] = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except ValueError:
            raise map_run_failed(
                env,
                StatesErrorNameType.StatesItemReaderFailed,
                f"Line {number} of the JSONL input is not JSON.",
                event_type=HistoryEventType.TaskFailed,
            ) from None
    env.stack.append(items[: reader_config["MaxItemsValue"]])


distributed_map = Hook(
    "distributed_map",
    why="moto's Distributed Map starts one thread per item, recurses once per item "
    "(RecursionError past ~1,000), shares one history between children, ignores "
    "ToleratedFailurePercentage/Count (failed children become null and the Map succeeds) "
    "and has no ItemBatcher. The run is the engine's DistributedMapRun: children on a "
    "bounded pool, each with its own history; the run fails with "
    "States.ExceedToleratedFailureThreshold above the tolerance; items are batched like AWS.",
    upstream="no upstream issue found",
)


@patch(distributed_map, DistributedIterationComponent, "_map_run", wraps=False)
def _map_run(self: Any, env: Any, eval_input: Any) -> None:
    """Replaces moto's Map Run with :class:`DistributedMapRun` (moto's is the list of gaps
    above: nothing of it is kept)."""
    run = DistributedMapRun(
        self,
        env,
        eval_input,
        batcher=item_batcher(self),
        max_workers=map_workers(),
        express_children=runs_express_children(self),
    )
    run.run()


result_writer = Hook(
    "result_writer",
    why="AWS's ResultWriter writes SUCCEEDED_0.json / FAILED_0.json / PENDING_0.json next to "
    "manifest.json and lists them in it, with Parameters (Prefix.$) read from the state "
    "input; moto writes only an empty manifest and reads Prefix.$ from the Map's outputs.",
    upstream="no upstream issue found",
)


@patch(result_writer, ResultWriter, "_eval_body")
def _write_results(original: Callable[[Any, Any], None], self: Any, env: Any) -> None:
    # The results are the Map Run's children, not the Map's outputs: moto's ResultWriter
    # evaluates its Parameters against the state input in their place.
    env.stack.pop()
    env.stack.append(env.stack[-1])
    original(self, env)


@patch(result_writer, ResultWriterResourceEvalS3, "_handle_put_object", wraps=False)
def _put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
    """Replaces moto's, which writes a manifest with no result files."""
    parameters = env.stack.pop()
    env.stack.pop()  # the state input, which the Parameters were evaluated against
    record = env.map_run_record_pool_manager.get_all()[-1]
    run = DistributedMapRun.of(record)
    if run is None:
        raise RuntimeError(f"no Map Run of this engine for {record.map_run_arn}")
    s3 = client(resource_runtime_part.region, "s3")
    env.stack.append(run.write_results(s3, parameters["Bucket"], parameters.get("Prefix", "")))


def map_run_children(account_id: str, region: str, execution_arn: str) -> list[ChildRun]:
    """The child executions of every Distributed Map run of an execution, by index."""
    backend = stepfunctions_parser_backends[account_id][region]
    execution: Any = backend.describe_execution(execution_arn)
    worker = getattr(execution, "exec_worker", None)
    env = worker.env if worker is not None else None
    children: list[ChildRun] = []
    if env is not None:
        for record in env.map_run_record_pool_manager.get_all():
            run = DistributedMapRun.of(record)
            if run is not None:
                with run.lock:
                    children.extend(run.children)
    return sorted(children, key=lambda child: child.index)


inline_map_iterative = Hook(
    "inline_map_iterative",
    why="moto's inline Map workers recurse once per item and hit RecursionError on long item "
    "lists at low MaxConcurrency; AWS has no such limit. The worker's call to itself for "
    "the next item is deferred and run in a loop.",
    upstream="no upstream issue found",
)

_deferred = threading.local()


@patch(inline_map_iterative, IterationWorker, "_eval_pool")
def _eval_pool(
    original: Callable[[Any, Any, Any], None], self: Any, job: Any, worker_frame: Any
) -> None:
    # moto's loop ends each job by calling itself for the next one (a tail call): inside
    # it, that call is queued and returns, and the queue is worked here, one level deep.
    calls: dict[int, list[tuple[Any, Any]]] = _deferred.__dict__.setdefault("calls", {})
    queued = calls.get(id(self))
    if queued is not None:
        queued.append((job, worker_frame))
        return
    queued = calls[id(self)] = [(job, worker_frame)]
    try:
        while queued:
            next_job, frame = queued.pop()
            original(self, next_job, frame)
    finally:
        del calls[id(self)]


HOOKS = (jsonl_reader, distributed_map, result_writer, inline_map_iterative)
