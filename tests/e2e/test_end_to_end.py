"""Upload -> EventBridge -> state machine -> Lambda or container -> outputs in S3, ledger.

The outputs are compared with a reference computed here, independently of the package's JSONL
code: parse each uploaded line, keep the valid Yelp records, add ``review_score``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from stepburst_local import LocalEngine, samples

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def reference(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """(the records the job must write, the number of lines it must reject)."""
    records, rejects = [], 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line, parse_constant=_reject_constant)
        except ValueError:
            rejects += 1
            continue
        stars = record.get("stars") if isinstance(record, dict) else None
        count = record.get("review_count") if isinstance(record, dict) else None
        valid = (
            isinstance(stars, int | float)
            and not isinstance(stars, bool)
            and math.isfinite(stars)
            and 0 <= stars <= 5
            and isinstance(count, int)
            and not isinstance(count, bool)
            and count >= 0
        )
        if not valid:
            rejects += 1
            continue
        records.append({**record, "review_score": stars * count})
    return records, rejects


def _run_id(engine: LocalEngine, arn: str) -> str:
    for event in engine.history(arn):
        if event["type"] == "TaskSucceeded":
            return str(
                json.loads(event["taskSucceededEventDetails"]["output"])["Payload"]["run_id"]
            )
    raise AssertionError("no run was planned")


def _outputs(engine: LocalEngine, prefix: str) -> list[dict[str, Any]]:
    s3 = engine.client("s3")
    bucket = engine.outputs["OutputBucketName"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    parts = sorted(e["Key"] for e in listed if e["Key"][len(prefix) :].startswith("part-"))
    records = []
    for key in parts:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        records.extend(json.loads(line) for line in body.splitlines() if line.strip())
    return records


@pytest.mark.parametrize(
    ("key", "route"),
    [
        ("incoming/yelp/businesses.jsonl", "lambda"),
        ("incoming/yelp-archive/businesses.jsonl", "ecs"),
    ],
    ids=["lambda", "container"],
)
def test_upload_writes_the_reference_outputs_and_ledger_counts(
    engine: LocalEngine, tmp_path: Path, key: str, route: str
) -> None:
    sample = tmp_path / "businesses.jsonl"
    samples.write_business_file(sample, 400_000, seed=3, bad_fraction=0.03)
    data = sample.read_bytes()
    expected, expected_rejects = reference(data)

    engine.upload(key, data)
    (arn,) = engine.executions_for_upload(key)
    execution = engine.wait_for_execution(arn, timeout=120)

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    run_id = _run_id(engine, arn)
    run = engine.ledger().get_run(run_id)
    assert run is not None
    assert run["status"] == "SUCCEEDED"
    assert run["records"] == len(expected)
    assert run["rejects"] == expected_rejects
    items = list(engine.ledger().iter_items(run_id))
    assert {item["route"] for item in items} == {route}
    assert sum(int(item["records"]) for item in items) == len(expected)
    prefix = str(run["summary_key"]).rsplit("/", 1)[0] + "/"
    assert _outputs(engine, prefix) == expected
    summary = json.loads(
        engine.client("s3")
        .get_object(Bucket=engine.outputs["OutputBucketName"], Key=run["summary_key"])["Body"]
        .read()
    )
    assert summary["status"] == "SUCCEEDED"
    assert summary["records"] == len(expected)


def test_a_repeated_upload_event_starts_one_run(engine: LocalEngine) -> None:
    key = "incoming/yelp/once.jsonl"
    engine.upload(key, b"\n".join(samples.iter_business_lines(20, seed=9)) + b"\n")
    (first,) = engine.executions_for_upload(key)
    assert engine.wait_for_execution(first)["status"] == "SUCCEEDED"
    event = json.loads(engine.describe_execution(first)["input"])

    # EventBridge delivers at least once: the same event again, as a second execution.
    again = engine.start_execution(event, name=f"{event['id']}-redelivered")
    execution = engine.wait_for_execution(again)

    assert execution["status"] == "SUCCEEDED"
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in engine.history(again)
        if e["type"].endswith("StateEntered")
    ]
    assert "AlreadyClaimed" in entered
    assert "FanOut" not in entered


def test_an_upload_no_job_takes_starts_no_execution(engine: LocalEngine) -> None:
    # The uploads rule passes only the deployed jobs' prefixes and suffixes.
    engine.upload("elsewhere/notes.txt", b"hello")
    engine.upload("incoming/yelp/notes.txt", b"hello")

    assert engine.executions_for_upload("elsewhere/notes.txt", timeout=0.5, expected=0) == []
    assert engine.executions_for_upload("incoming/yelp/notes.txt", timeout=0.5, expected=0) == []


def test_an_upload_that_reaches_plan_and_matches_nothing_is_ignored(engine: LocalEngine) -> None:
    # A job removed after the upload's event left: the event reaches Plan all the same.
    stored = engine.upload("retired/notes.txt", b"hello")
    event = json.loads((ROOT / "events" / "s3-object-created.json").read_text(encoding="utf-8"))
    event["detail"]["bucket"]["name"] = stored["Bucket"]
    event["detail"]["object"].update(key="retired/notes.txt", size=5, etag=stored["ETag"])
    event["detail"]["object"]["version-id"] = stored["VersionId"]
    arn = engine.start_execution(event, name="retired-notes")

    execution = engine.wait_for_execution(arn)

    assert execution["status"] == "SUCCEEDED"
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in engine.history(arn)
        if e["type"].endswith("StateEntered")
    ]
    assert entered[-1] == "NoJobMatches"
