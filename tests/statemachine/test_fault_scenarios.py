"""Faults that strike while a unit runs, and faults of the engine's own AWS services.

Each scenario arms a fault of :mod:`stepburst_local.faults`, runs the deployed template and
state machine on the local engine, and asserts the execution's end, the run's end (the same),
each item's end and attempts, and where the run failed, that a redrive completes it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from scenario_support import FIXTURE_JOBS, ROOT, Run, plan_output
from tests.polling import Pending, poll

from stepburst_local import LocalEngine

pytestmark = [pytest.mark.statemachine, pytest.mark.slow]


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    """The template's own function timeouts: a unit cut short here is the fault's doing."""
    with LocalEngine(ROOT, jobs_dir=FIXTURE_JOBS, time_scale=0.01, quiet=True) as running:
        yield running


class ItemIs:
    """A fault's condition: the execution's item ``index`` has ``status`` in the ledger."""

    def __init__(self, engine: LocalEngine, index: int, status: str) -> None:
        self.engine = engine
        self.index = index
        self.status = status
        self.arn: str | None = None

    def __call__(self) -> bool:
        if self.arn is None:
            return False
        link = self.engine.ledger().execution_link(self.arn)
        if link is None:
            return False
        return any(
            int(item["item"]) == self.index and item.get("status") == self.status
            for item in self.engine.ledger().iter_items(str(link["run_id"]))
        )


def _start(engine: LocalEngine, job: str, items: list[str], done: ItemIs | None = None) -> str:
    arn = engine.start_execution({"job": job, "input": {"items": items}})
    if done is not None:
        done.arn = arn
    return arn


def _finish(engine: LocalEngine, arn: str, timeout: float = 120) -> Run:
    execution = engine.wait_for_execution(arn, timeout=timeout)
    run_id = plan_output(engine, arn)["run_id"]
    ledger = engine.ledger()
    return Run(
        execution=execution,
        arn=arn,
        run_id=run_id,
        record=ledger.get_run(run_id) or {},
        items=sorted(ledger.iter_items(run_id), key=lambda item: int(item["item"])),
    )


def _classes(item: dict[str, Any]) -> list[str]:
    return [str(attempt.get("class")) for attempt in item.get("history") or []]


# -- Spot reclaimed while the worker runs -------------------------------------------------------
# A container unit holds one item: the interrupted unit's item runs again, the other units'
# finished items are not run again.


def test_an_ecs_spot_interruption_mid_item_retries_that_unit_only(engine: LocalEngine) -> None:
    running = ItemIs(engine, 1, "RUNNING")
    engine.faults.ecs_spot_interruption_running(times=1, when=running, unit=1)

    run = _finish(engine, _start(engine, "scenario-spot", ["ok-0", "sleep-3", "ok-2"], running))

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert run.record["status"] == "SUCCEEDED"
    assert engine.faults.fired["ecs_spot_interruption_running"] == 1
    assert [item["status"] for item in run.items] == ["SUCCEEDED"] * 3
    assert [int(item["attempts"]) for item in run.items] == [1, 2, 1]
    interrupted = run.item(1)
    assert _classes(interrupted) == ["spot_interruption"]
    assert interrupted["history"][0]["stop_reason"] == "Your Spot Task was interrupted."


def test_a_batch_host_termination_mid_item_retries_that_unit_only(engine: LocalEngine) -> None:
    running = ItemIs(engine, 1, "RUNNING")
    engine.faults.batch_host_termination(times=1, when=running, unit=1)

    run = _finish(
        engine, _start(engine, "scenario-batch-spot", ["ok-0", "sleep-3", "ok-2"], running)
    )

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert run.record["status"] == "SUCCEEDED"
    assert engine.faults.fired["batch_host_termination"] == 1
    assert [item["status"] for item in run.items] == ["SUCCEEDED"] * 3
    assert [int(item["attempts"]) for item in run.items] == [1, 2, 1]
    interrupted = run.item(1)
    assert _classes(interrupted) == ["spot_interruption"]
    assert interrupted["history"][0]["stop_reason"].startswith("Host EC2 (instance i-")
    assert "exit_code" not in interrupted["history"][0]


def test_a_batch_host_termination_before_the_worker_started_retries_the_unit(
    engine: LocalEngine,
) -> None:
    # No condition: the host goes the moment the job's container starts, before the worker has
    # recorded its item; the attempt is known only from Batch's answer.
    engine.faults.batch_host_termination(times=1, unit=0)

    run = _finish(engine, _start(engine, "scenario-batch-spot", ["ok-0"]))

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert run.record["status"] == "SUCCEEDED"
    assert engine.faults.fired["batch_host_termination"] == 1
    (item,) = run.items
    assert item["status"] == "SUCCEEDED"
    assert int(item["attempts"]) == 2
    assert _classes(item) == ["spot_interruption"]
    assert item["history"][0]["stop_reason"].startswith("Host EC2 (instance i-")
    assert "exit_code" not in item["history"][0]


def test_spot_interruptions_past_the_bound_fail_truthfully_and_redrive_completes(
    engine: LocalEngine,
) -> None:
    running = ItemIs(engine, 1, "RUNNING")
    engine.faults.ecs_spot_interruption_running(times=3, when=running, unit=1)

    run = _finish(engine, _start(engine, "scenario-spot", ["ok-0", "sleep-3"], running))

    assert run.status == "FAILED"
    assert run.record["status"] == "FAILED"
    assert engine.faults.fired["ecs_spot_interruption_running"] == 3
    assert run.item(0)["status"] == "SUCCEEDED"
    lost = run.item(1)
    assert lost["status"] == "FAILED"
    assert lost["failure_class"] == "spot_interruption"
    assert _classes(lost) == ["spot_interruption"] * 3  # infrastructure_attempts: 3

    engine.faults.clear()
    redriven = engine.wait_for_execution(engine.start_execution({"redrive": run.run_id}), 120)
    assert redriven["status"] == "SUCCEEDED", redriven.get("cause")
    ledger = engine.ledger()
    assert ledger.get_run(run.run_id)["status"] == "SUCCEEDED"
    items = {int(item["item"]): item for item in ledger.iter_items(run.run_id)}
    assert {item["status"] for item in items.values()} == {"SUCCEEDED"}
    assert int(items[0]["attempts"]) == 1


# -- JSONL uploads ------------------------------------------------------------------------------

RECORD_PADDING = "x" * 90


def _jsonl(records: int, *, pause_at: int | None = None, bad_every: int = 1000) -> bytes:
    """``records`` lines with unique ids (every ``bad_every``-th line is not JSON); the record
    at ``pause_at`` pauses its item for 3 s."""
    lines = []
    for index in range(records):
        if index % bad_every == bad_every - 1:
            lines.append(b"{not json")
            continue
        record: dict[str, Any] = {"id": index, "padding": RECORD_PADDING}
        if index == pause_at:
            record["pause"] = 3
        lines.append(json.dumps(record).encode())
    return b"\n".join(lines) + b"\n"


@dataclass
class Upload:
    run: Run
    summary: dict[str, Any]
    output_ids: list[int]
    rejected_lines: int
    parts: dict[str, bytes]


def _upload(engine: LocalEngine, key: str, data: bytes, done: ItemIs | None = None) -> Upload:
    engine.upload(key, data)
    (arn,) = engine.executions_for_upload(key)
    if done is not None:
        done.arn = arn
    return _read_upload(engine, _finish(engine, arn))


def _read_upload(engine: LocalEngine, run: Run) -> Upload:
    s3 = engine.client("s3")
    bucket = engine.outputs["OutputBucketName"]
    record = engine.ledger().get_run(run.run_id) or {}
    summary: dict[str, Any] = {}
    ids: list[int] = []
    rejected = 0
    parts: dict[str, bytes] = {}
    if record.get("summary_key"):
        summary = json.loads(s3.get_object(Bucket=bucket, Key=record["summary_key"])["Body"].read())
        prefix = str(record["summary_key"]).rsplit("/", 1)[0] + "/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                name = entry["Key"][len(prefix) :]
                body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
                if name.startswith("part-"):
                    parts[name] = body
                    ids += [json.loads(line)["id"] for line in body.splitlines() if line]
                elif name.startswith("rejects/part-"):
                    rejected += len([line for line in body.splitlines() if line])
    return Upload(run=run, summary=summary, output_ids=ids, rejected_lines=rejected, parts=parts)


def _assert_complete(upload: Upload, records: int) -> None:
    """Records in = records out + rejects, no record twice, S3 agrees with the summary."""
    good = records - records // 1000
    assert len(upload.output_ids) == len(set(upload.output_ids)), "a record was written twice"
    assert len(upload.output_ids) == good
    assert upload.summary["records"] == good
    assert upload.summary["rejects"] == records - good == upload.rejected_lines
    assert upload.summary["records"] + upload.summary["rejects"] == records


RECORDS = 30_000  # ~3.3 MB: four 1 MB ranges in one Lambda unit


def test_a_lambda_process_exit_mid_unit_keeps_finished_ranges_and_retries_the_rest(
    engine: LocalEngine,
) -> None:
    done = ItemIs(engine, 0, "SUCCEEDED")
    engine.faults.lambda_process_exit("ProcessItemsFunction", times=1, when=done)

    upload = _upload(
        engine, "scenario-faults/exit.jsonl", _jsonl(RECORDS, pause_at=RECORDS // 3), done
    )

    run = upload.run
    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert run.record["status"] == "SUCCEEDED"
    assert engine.faults.fired["lambda_process_exit"] == 1
    assert len(run.items) >= 3
    assert {item["status"] for item in run.items} == {"SUCCEEDED"}
    # The range finished before the runtime died ran once; the one it cut short ran again.
    assert int(run.item(0)["attempts"]) == 1
    cut_short = next(item for item in run.items if int(item["attempts"]) == 2)
    assert _classes(cut_short)[0] == "application"
    assert cut_short["history"][0]["error"] == "Runtime.ExitError"
    _assert_complete(upload, RECORDS)


# -- DynamoDB throttling ------------------------------------------------------------------------


def _invoked(engine: LocalEngine, function: str) -> Callable[[], bool]:
    """A fault's condition that does not call DynamoDB: ``function`` has been invoked."""
    already = engine.lambda_runtime.invocations.get(function, 0)
    return lambda: engine.lambda_runtime.invocations.get(function, 0) > already


@pytest.mark.parametrize(
    ("function", "code"),
    [
        ("PlanFunction", "ProvisionedThroughputExceededException"),
        ("ProcessItemsFunction", "ThrottlingException"),
        ("FinalizeFunction", "ProvisionedThroughputExceededException"),
    ],
)
def test_dynamodb_throttling_within_the_sdks_retries_loses_nothing(
    engine: LocalEngine, function: str, code: str
) -> None:
    # Three throttles in a row: the SDK's own retries (adaptive, 10 after the first) absorb them.
    engine.faults.dynamodb_throttle(times=3, code=code, when=_invoked(engine, function))
    key = f"scenario-faults/throttled-{function}.jsonl"

    upload = _upload(engine, key, _jsonl(RECORDS))

    run = upload.run
    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert run.record["status"] == "SUCCEEDED"
    assert engine.faults.fired["dynamodb_throttle"] == 3
    assert {item["status"] for item in run.items} == {"SUCCEEDED"}
    assert {int(item["attempts"]) for item in run.items} == {1}
    _assert_complete(upload, RECORDS)


# -- S3 ranged reads ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_upload(engine: LocalEngine) -> Upload:
    """The reference: the same records uploaded with no fault armed."""
    upload = _upload(engine, "scenario-faults/clean.jsonl", _jsonl(RECORDS))
    assert upload.run.status == "SUCCEEDED", upload.run.execution.get("cause")
    return upload


@pytest.mark.parametrize("kind", ["SlowDown", "InternalError", "truncated"])
def test_s3_failures_mid_range_are_retried_and_the_output_is_a_clean_runs(
    engine: LocalEngine, clean_upload: Upload, kind: str
) -> None:
    key = f"scenario-faults/ranged-{kind}.jsonl"
    # Two in a row: a 5xx within the SDK's own retries; a body cut short halfway, resumed with
    # a GET of the rest (IfMatch its ETag).
    engine.faults.s3_range_failure(times=2, kind=kind, key_contains=key)

    upload = _upload(engine, key, _jsonl(RECORDS))

    run = upload.run
    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert run.record["status"] == "SUCCEEDED"
    assert engine.faults.fired["s3_range_failure"] == 2
    assert {item["status"] for item in run.items} == {"SUCCEEDED"}
    assert {int(item["attempts"]) for item in run.items} == {1}
    _assert_complete(upload, RECORDS)
    assert upload.parts == clean_upload.parts


# -- DynamoDB throttling past every retry -------------------------------------------------------

COORDINATOR = json.loads((ROOT / "statemachines" / "coordinator.asl.json").read_text())


def _state(name: str, states: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The coordinator's state ``name``, wherever it is nested."""
    for state_name, state in (states or COORDINATOR["States"]).items():
        if state_name == name:
            return dict(state)
        for inner in [state.get("ItemProcessor"), *state.get("Branches", [])]:
            found = _state(name, inner["States"]) if inner else None
            if found is not None:
                return found
    return None


def _throttled_invocations(state: str) -> int:
    """How many times ``state``'s Lambda runs while a throttle outlasts the SDK's retries: its
    Retry of ``ThrottledError`` (what the adapters raise then) and the first attempt."""
    found = _state(state)
    assert found is not None, state
    (retrier,) = [r for r in found["Retry"] if "ThrottledError" in r["ErrorEquals"]]
    return int(retrier["MaxAttempts"]) + 1


def _while_running(engine: LocalEngine, function: str, invocations: int) -> Callable[[], bool]:
    """A fault's condition: one of ``function``'s next ``invocations`` invocations is running
    (each runs in a thread of its own, named after the function)."""
    first = engine.lambda_runtime.invocations.get(function, 0)
    name = f"lambda-{function}"

    def holds() -> bool:
        invoked = engine.lambda_runtime.invocations.get(function, 0)
        running = any(thread.name == name for thread in threading.enumerate())
        return first < invoked <= first + invocations and running

    return holds


def _ended_run(engine: LocalEngine, run_id: str) -> dict[str, Any]:
    """The run's record once it is no longer RUNNING: an execution that ended outside
    Finalize is brought to its end by the reconciler, on the execution's status event."""

    def ended() -> dict[str, Any] | Pending:
        record = engine.ledger().get_run(run_id) or {}
        return record if record.get("status") not in (None, "RUNNING") else Pending(record)

    return poll(ended, what=f"run {run_id} to end", timeout=30)


# The job's failure_policy.infrastructure_attempts (tests/fixtures/jobs/scenario-faults.yaml):
# RecoverUnit runs a unit that failed on infrastructure once more.
FAULTS_JOB_INFRASTRUCTURE_ATTEMPTS = 2


@pytest.mark.parametrize(
    ("function", "state", "rounds", "error"),
    [
        ("PlanFunction", "Plan", 1, "ThrottledError"),
        ("ProcessItemsFunction", "RunOnLambda", FAULTS_JOB_INFRASTRUCTURE_ATTEMPTS, "RunFailed"),
        ("FinalizeFunction", "Finalize", 1, "ThrottledError"),
    ],
)
def test_dynamodb_throttling_past_every_retry_fails_truthfully_and_recovery_completes(
    engine: LocalEngine, function: str, state: str, rounds: int, error: str
) -> None:
    # Every DynamoDB call fails while the function runs, for as many invocations as the
    # state's Retry (and, for a unit, RecoverUnit's infrastructure retry) makes: each
    # invocation exhausts the SDK's own retries (adaptive, 10) or its retry quota first.
    invocations = _throttled_invocations(state) * rounds
    throttled = _while_running(engine, function, invocations)
    before = engine.lambda_runtime.invocations.get(function, 0)
    engine.faults.dynamodb_throttle(times=1_000_000, when=throttled)
    key = f"scenario-faults/exhausted-{function}.jsonl"

    engine.upload(key, _jsonl(RECORDS))
    (arn,) = engine.executions_for_upload(key)
    execution = engine.wait_for_execution(arn, timeout=120)
    engine.faults.clear()

    assert execution["status"] == "FAILED"
    assert str(execution.get("error")).endswith(error), execution.get("cause")
    assert engine.lambda_runtime.invocations[function] == before + invocations
    run_id = plan_output(engine, arn)["run_id"]  # Plan's output, or RecordPlanFailure's
    record = _ended_run(engine, run_id)
    assert record["status"] == "FAILED"
    items = sorted(engine.ledger().iter_items(run_id), key=lambda item: int(item["item"]))
    failed = Run(execution=execution, arn=arn, run_id=run_id, record=record, items=items)
    upload = _read_upload(engine, failed)
    assert len(upload.output_ids) == len(set(upload.output_ids)), "a record was written twice"
    if function == "PlanFunction":
        # Plan failed at its first write: no item, and the claim is free again.
        assert items == []
        assert record["planned_items"] == 0
    elif function == "ProcessItemsFunction":
        assert len(items) == 4
        for item in items:
            assert item["status"] == "FAILED"
            assert item["failure_class"] == "infrastructure"
            assert _classes(item) == ["infrastructure"] * rounds
            assert item["history"][-1]["error"] == "ThrottledError"
    else:
        # Every item finished before Finalize; the reconciler ended the run, not its items.
        assert len(items) == 4
        assert {(item["status"], int(item["attempts"])) for item in items} == {("SUCCEEDED", 1)}
        assert "ThrottledError" in record["cause"]

    if function == "PlanFunction":
        # No plan to redrive: the upload's event delivered again plans the same run.
        event = json.loads(
            engine.client("stepfunctions").describe_execution(executionArn=arn)["input"]
        )
        recovery = engine.start_execution(event)
    else:
        recovery = engine.start_execution({"redrive": run_id})
    recovered = engine.wait_for_execution(recovery, timeout=120)

    assert recovered["status"] == "SUCCEEDED", recovered.get("cause")
    ledger = engine.ledger()
    completed = Run(
        execution=recovered,
        arn=recovery,
        run_id=run_id,
        record=ledger.get_run(run_id) or {},
        items=sorted(ledger.iter_items(run_id), key=lambda item: int(item["item"])),
    )
    assert completed.record["status"] == "SUCCEEDED"
    assert len(completed.items) == 4
    assert {item["status"] for item in completed.items} == {"SUCCEEDED"}
    _assert_complete(_read_upload(engine, completed), RECORDS)
