"""A Distributed Map run, as AWS runs it: our own implementation, which moto's state delegates to.

https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html

:class:`DistributedMapRun` takes the items the ItemReader read (or the state's items), groups
them like an ItemBatcher, runs each item (or batch) as a child execution of its own on a
bounded pool of threads, each child with its own history, fails the run with
``States.ExceedToleratedFailureThreshold`` above the tolerated failures, and writes the
ResultWriter's files.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from stepburst_local import ids
from stepburst_local.asl import ItemBatcher
from stepburst_local.moto_internals import (
    FailureEventException,
    HistoryEventType,
    ItemData,
    MapData,
    ProgramError,
    ProgramStopped,
    ProgramTimedOut,
    StatesErrorNameType,
    json_path,
    to_json_str,
)
from stepburst_local.patches.failures import map_run_failed
from stepburst_local.patches.quotas import PAYLOAD_LIMIT_BYTES, count_history, new_history
from stepburst_local.patches.status_events import send_child_status

LOG = logging.getLogger(__name__)

CHILD_HISTORIES = 1_000
"""Children whose histories are kept for inspection (tests, the demo)."""


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


class DistributedMapRun:
    """One run of a Distributed Map state (``env`` is the state's environment)."""

    _of_record: ClassVar[weakref.WeakKeyDictionary[Any, DistributedMapRun]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(
        self,
        component: Any,
        env: Any,
        eval_input: Any,
        *,
        batcher: ItemBatcher | None,
        max_workers: int,
        express_children: bool = False,
    ) -> None:
        self.component = component
        self.env = env
        self.eval_input = eval_input
        self.record = eval_input.map_run_record
        self.batcher = batcher
        self.max_workers = max_workers
        self.express_children = express_children
        self.tolerated_count = int(eval_input.tolerated_failure_count or 0)
        self.tolerated_percentage = float(eval_input.tolerated_failure_percentage or 0.0)
        self.total = 0
        self.children: list[ChildRun] = []
        """The children that ended (and, PENDING, those a halted run never started)."""
        self.running: dict[int, ChildRun] = {}
        self.failed = 0
        self.halted = False
        self.lock = threading.Lock()
        self._of_record[self.record] = self

    @classmethod
    def of(cls, record: Any) -> DistributedMapRun | None:
        """The run of a Map Run record (moto's), if this engine ran it."""
        return cls._of_record.get(record)

    def started_children(self) -> list[ChildRun]:
        """The child executions that started: running or ended (not those left PENDING)."""
        with self.lock:
            ended = [child for child in self.children if child.status != "PENDING"]
            return [*ended, *self.running.values()]

    def child_execution_arn(self, child: ChildRun) -> str:
        """``arn:...:execution:<state machine>/<label>:<child name>``, beside the Map Run's
        ``arn:...:mapRun:<state machine>/<label>:<id>``."""
        prefix = self.record.map_run_arn.replace(":mapRun:", ":execution:").rsplit(":", 1)[0]
        return f"{prefix}:{child.name}"

    def item_count(self, child: ChildRun) -> int:
        """The items a child processed: its batch's, or one."""
        if self.batcher is not None and isinstance(child.input, dict):
            items = child.input.get("Items")
            if isinstance(items, list):
                return len(items)
        return 1

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> None:
        """Take the items from the stack, run the children, leave their outputs on it."""
        env = self.env
        items: list[Any] = env.stack.pop()
        state_input = env.stack[-1] if env.stack else env.states.get_input()
        selector = self.eval_input.item_selector or self.eval_input.parameters
        if self.batcher is not None:
            if selector is not None:
                items = [
                    self._selected(state_input, selector, index, item)
                    for index, item in enumerate(items)
                ]
            items = batch_items(items, self.batcher, state_input)
            selector = None  # each batch is a child's input as it is
        outputs = self._run_children(items, state_input, selector)
        if self.exceeded() and env.is_running():
            raise map_run_failed(
                env,
                StatesErrorNameType.StatesExceedToleratedFailureThreshold,
                "The specified tolerated failure threshold was exceeded",
                event_type=HistoryEventType.MapRunFailed,
            )
        env.stack.append(outputs)

    def _run_children(self, inputs: list[Any], state_input: Any, selector: Any) -> list[Any]:
        """Each input as a child execution, on at most ``max_workers`` threads."""
        self.total = len(inputs)
        outputs: list[Any] = [None] * len(inputs)
        program = self.component._get_iteration_program()
        queue = enumerate(inputs)
        queue_lock = threading.Lock()
        crashes: list[BaseException] = []

        def work() -> None:
            try:
                while True:
                    with queue_lock:
                        taken = next(queue, None)
                    if taken is None:
                        return
                    index, item = taken
                    if self.halted:
                        self._skipped(index, item)
                    else:
                        outputs[index] = self._run_child(
                            program, index, item, state_input, selector
                        )
            except BaseException as crash:  # a bug here: the Map Run fails with it
                crashes.append(crash)

        concurrency = self.record.max_concurrency or len(inputs)
        workers = [
            threading.Thread(target=work, name=f"map-run-{index}", daemon=True)
            for index in range(max(0, min(concurrency, len(inputs), self.max_workers)))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if crashes:
            raise crashes[0]
        return outputs

    def exceeded(self) -> bool:
        """More children failed than the run tolerates (by default: any)."""
        if self.tolerated_count == 0 and self.tolerated_percentage == 0:
            return self.failed > 0
        over_count = self.tolerated_count > 0 and self.failed > self.tolerated_count
        over_percentage = (
            self.tolerated_percentage > 0
            and self.total > 0
            and self.failed * 100.0 / self.total > self.tolerated_percentage
        )
        return over_count or over_percentage

    def _run_child(
        self, program: Any, index: int, item: Any, state_input: Any, selector: Any
    ) -> Any:
        """One child execution, with its own history, recorded for the ResultWriter."""
        record = self.record
        for counter in (record.item_counter, record.execution_counter):
            counter.total.count()
            counter.running.count()
        child = ChildRun(
            index=index,
            name=str(ids.uuid4()),
            input=item,
            start=datetime.datetime.now(tz=datetime.UTC),
        )
        frame = self.env.open_inner_frame()
        # Each child is its own execution on AWS, with its own history and quota.
        count_history(frame, new_history())
        try:
            _enter_item(frame, index, item)
            frame.stack.append(frame.states.get_input())
            if selector is not None:
                frame.states.reset(input_value=_apply(frame, selector, state_input))
            child.input = frame.states.get_input()
            with self.lock:
                self.running[index] = child
            self._send_status(child)
            program.eval(frame)
            _record_outcome(child, frame)
        except FailureEventException as failure:
            child.status = "FAILED"
            child.error, child.cause = failure.extract_error_cause_pair() or (None, None)
        except Exception as exc:  # a bug in a hook or the interpreter: the child fails
            LOG.exception("map child %s crashed", index)
            child.status = "FAILED"
            child.error, child.cause = "States.Runtime", f"{type(exc).__name__}: {exc}"
        finally:
            self._finish(child, frame)
            self.env.delete_frame(frame)
        return child.output

    def _finish(self, child: ChildRun, frame: Any) -> None:
        child.stop = datetime.datetime.now(tz=datetime.UTC)
        if child.index < CHILD_HISTORIES:
            child.history = [
                {**event, "type": str(getattr(event["type"], "value", event["type"]))}
                for event in frame.event_manager.get_event_history()
            ]
        for counter in (self.record.item_counter, self.record.execution_counter):
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
        with self.lock:
            self.running.pop(child.index, None)
            self.children.append(child)
            if child.status != "SUCCEEDED":
                self.failed += 1
                if self.exceeded():
                    self.halted = True
        self._send_status(child)

    def _send_status(self, child: ChildRun) -> None:
        if self.express_children:
            return
        details = self.env.aws_execution_details
        send_child_status(
            account_id=details.account,
            region=details.region,
            execution_arn=self.child_execution_arn(child),
            state_machine_arn=self.record.map_state_machine_arn,
            name=child.name,
            status=child.status,
            start=child.start,
            stop=child.stop,
            input_value=child.input,
            output_value=child.output,
            error=child.error,
            cause=child.cause,
        )

    def _skipped(self, index: int, item: Any) -> None:
        """An item a halted run never starts; ResultWriter reports it PENDING."""
        pending = ChildRun(
            index=index,
            name="",
            input=item,
            start=datetime.datetime.now(tz=datetime.UTC),
            status="PENDING",
        )
        with self.lock:
            self.children.append(pending)

    def _selected(self, state_input: Any, selector: Any, index: int, item: Any) -> Any:
        frame = self.env.open_inner_frame()
        try:
            _enter_item(frame, index, item)
            return _apply(frame, selector, state_input)
        finally:
            self.env.delete_frame(frame)

    # -- ResultWriter ------------------------------------------------------------------------

    def write_results(self, s3: Any, bucket: str, prefix: str) -> dict[str, Any]:
        """Write ``SUCCEEDED_0.json``, ``FAILED_0.json``, ``PENDING_0.json`` and the manifest
        listing them under ``prefix/<map run id>/``; the ResultWriter's output."""
        # https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        arn = self.record.map_run_arn
        base = f"{prefix}{arn.split(':')[-1]}/"
        with self.lock:
            children = sorted(self.children, key=lambda c: c.index)
        groups = {
            "SUCCEEDED": [c for c in children if c.status == "SUCCEEDED"],
            "FAILED": [c for c in children if c.status not in ("SUCCEEDED", "PENDING")],
            "PENDING": [c for c in children if c.status == "PENDING"],
        }
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        for status, group in groups.items():
            if not group:
                continue
            body = json.dumps([self._result_entry(child) for child in group]).encode()
            key = f"{base}{status}_0.json"
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
        manifest = {"DestinationBucket": bucket, "MapRunArn": arn, "ResultFiles": files}
        manifest_key = f"{base}manifest.json"
        s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest).encode())
        return {
            "MapRunArn": arn,
            "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key},
        }

    def _result_entry(self, child: ChildRun) -> dict[str, Any]:
        record = self.record
        entry: dict[str, Any] = {
            "ExecutionArn": self.child_execution_arn(child),
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


def _enter_item(frame: Any, index: int, item: Any) -> None:
    frame.states.context_object.context_object_data["Map"] = MapData(
        Item=ItemData(Index=index, Value=item)
    )
    frame.states.reset(input_value=item)


def _apply(frame: Any, selector: Any, state_input: Any) -> Any:
    """An ItemSelector (or Parameters) evaluated against the state input, with
    ``$$.Map.Item`` set: the item as the child receives it."""
    frame.states.reset(input_value=state_input)
    frame.stack.append(state_input)
    selector.eval(frame)
    return frame.stack[-1]


def _record_outcome(child: ChildRun, frame: Any) -> None:
    ended = frame.program_state()
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
        child.output = frame.states.get_input()


def batch_items(items: list[Any], batcher: ItemBatcher, state_input: Any) -> list[Any]:
    """Items grouped as an ItemBatcher groups them: ``{"Items": [...], "BatchInput": ...}``."""
    # https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itembatcher.html
    max_items = _resolved(batcher.max_items, batcher.max_items_path, state_input) or len(items)
    max_bytes = (
        _resolved(batcher.max_bytes, batcher.max_bytes_path, state_input) or PAYLOAD_LIMIT_BYTES
    )
    batch_input = _resolve_template(batcher.batch_input, state_input)
    batches: list[dict[str, Any]] = []
    for group in _groups(items, max(1, max_items), max_bytes):
        job: dict[str, Any] = {"Items": group}
        if batch_input is not None:
            job["BatchInput"] = batch_input
        batches.append(job)
    return batches


def _groups(items: list[Any], max_items: int, max_bytes: int) -> Iterator[list[Any]]:
    group: list[Any] = []
    size = 0
    for item in items:
        item_size = len(json.dumps(item, separators=(",", ":")).encode())
        if group and (len(group) >= max_items or size + item_size > max_bytes):
            yield group
            group, size = [], 0
        group.append(item)
        size += item_size
    if group:
        yield group


def _resolved(value: int | None, path: str | None, state_input: Any) -> int | None:
    if path:
        return int(json_path.extract_json(path, state_input))
    return value


def _resolve_template(template: Any, state_input: Any) -> Any:
    """A Parameters-style template resolved (keys ending in ``.$`` are JSONPaths)."""
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


def _iso(moment: datetime.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
