"""The combine step, output key templates and Glue tables on the deployed state machine.

Map-then-reduce: each item counts its words, the job's combine step sums every item's counts;
the sums are checked against a count made here from the texts themselves.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from scenario_support import Run, plan_output

from stepburst_local import LocalEngine

pytestmark = pytest.mark.statemachine

# The texts tests/fixtures/jobs/scenario_wordcount.py counts, counted again here.
TEXTS = {
    "doc-a": "the cat sat on the mat",
    "doc-b": "the dog sat",
    "doc-c": "a cat and a dog",
}


def start(engine: LocalEngine, job: str, given: dict[str, Any], **params: str) -> Run:
    arn = engine.start_execution({"job": job, "input": given, "params": params})
    execution = engine.wait_for_execution(arn, timeout=60)
    run_id = plan_output(engine, arn)["run_id"]
    ledger = engine.ledger()
    return Run(
        execution=execution,
        arn=arn,
        run_id=run_id,
        record=ledger.get_run(run_id) or {},
        items=sorted(ledger.iter_items(run_id), key=lambda item: int(item["item"])),
    )


def expected_counts(*names: str) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for name in names:
        counts.update(TEXTS[name].split())
    return dict(sorted(counts.items()))


def output_json(engine: LocalEngine, key: str) -> Any:
    body = engine.client("s3").get_object(Bucket=engine.outputs["OutputBucketName"], Key=key)
    return json.loads(body["Body"].read())


@pytest.mark.parametrize("job", ["scenario-combine", "scenario-combine-command"])
def test_combine_sums_the_items_outputs(engine: LocalEngine, job: str) -> None:
    run = start(engine, job, {"items": ["doc-a", "doc-b", "doc-c"]})

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    wanted = {"items": 3, "counts": expected_counts("doc-a", "doc-b", "doc-c")}
    assert run.record["combine_status"] == "SUCCEEDED"
    assert run.record["combine_result"] == wanted
    assert run.record["combine_route"] == "lambda"
    # The run's result: the execution's output, the result file and the summary.
    assert json.loads(run.execution["output"])["result"] == wanted
    prefix = run.record["output_prefix"]
    assert output_json(engine, f"{prefix}_RESULT.json") == wanted
    assert output_json(engine, run.record["summary_key"])["result"] == wanted


def test_a_failed_combine_fails_the_run_and_keeps_the_items(engine: LocalEngine) -> None:
    run = start(engine, "scenario-combine", {"items": ["doc-a", "doc-b"]}, BREAK_COMBINE="yes")

    assert run.status == "FAILED"
    assert run.record["status"] == "FAILED"
    assert run.record["combine_status"] == "FAILED"
    assert run.record["combine_error"] == "CombineBrokenError"
    assert "combine fails on purpose" in run.record["cause"]
    assert run.record["cause"].startswith("combine failed:")
    assert "combine fails on purpose" in str(run.execution.get("cause"))
    assert [item["status"] for item in run.items] == ["SUCCEEDED", "SUCCEEDED"]
    assert run.record["succeeded"] == 2


def test_combine_runs_within_the_tolerated_failures(engine: LocalEngine) -> None:
    run = start(engine, "scenario-combine", {"items": ["doc-a", "doc-b", "fail-1"]})

    assert run.status == "SUCCEEDED", run.execution.get("cause")
    assert run.record["combine_result"] == {
        "items": 2,
        "counts": expected_counts("doc-a", "doc-b"),
    }


def test_combine_is_skipped_past_the_tolerated_failures(engine: LocalEngine) -> None:
    run = start(engine, "scenario-combine", {"items": ["doc-a", "fail-1", "fail-2"]})

    assert run.status == "FAILED"
    assert run.record["combine_status"] == "SKIPPED"
    assert run.record["combine_cause"].startswith("combine skipped: 2 of 3 items failed")
    assert "combine_result" not in run.record
    assert run.record["cause"].startswith("2 of 3 items failed")
    summary = output_json(engine, run.record["summary_key"])
    assert summary["combine_status"] == "SKIPPED"


def test_a_rerun_replaces_its_partition_and_registers_it(engine: LocalEngine) -> None:
    s3 = engine.client("s3")
    bucket = engine.outputs["OutputBucketName"]
    folder = "scenarios/partitioned/date=20240105/"
    # Something an earlier run left that this job no longer writes.
    s3.put_object(Bucket=bucket, Key=f"{folder}counts/stale.json", Body=b"{}")
    # S3 dates objects to the second, and a run keeps what is dated the second of its listing
    # (stepburst.replacing): the earlier run's object must be from an earlier second, which
    # two quick runs do not always reach on their own.
    time.sleep(1.05 - time.time() % 1)

    runs = [start(engine, "scenario-partitioned", {"date": "20240105"}) for _ in range(2)]

    for run in runs:
        assert run.status == "SUCCEEDED", run.execution.get("cause")
        assert run.record["output_prefix"] == folder
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=folder).get("Contents", [])
    keys = sorted(entry["Key"] for entry in listed)
    assert keys == [f"{folder}_SUMMARY.json", f"{folder}counts/20240105.json"]
    assert output_json(engine, f"{folder}_SUMMARY.json")["run_id"] == runs[1].run_id
    assert output_json(engine, f"{folder}counts/20240105.json") == {
        "the": 1,
        "day": 1,
        "20240105": 1,
    }

    glue = engine.client("glue")
    table = glue.get_table(DatabaseName="stepburst", Name="scenario_counts")["Table"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{bucket}/scenarios/partitioned/"
    assert [key["Name"] for key in table["PartitionKeys"]] == ["date"]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == (
        "org.openx.data.jsonserde.JsonSerDe"
    )
    partition = glue.get_partition(
        DatabaseName="stepburst", TableName="scenario_counts", PartitionValues=["20240105"]
    )["Partition"]
    assert partition["StorageDescriptor"]["Location"] == f"s3://{bucket}/{folder}"
