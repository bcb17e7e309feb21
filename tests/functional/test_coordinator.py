"""The handlers and the worker against moto, driven with the event shapes in events/."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest

from stepburst import components, storage, worker
from stepburst.errors import InvalidInputError, ItemsFailedError
from stepburst_local import samples
from tests.unit.test_records import reference_review_scores

from .conftest import EVENTS_DIR, Cloud
from .handlers import invoke

pytestmark = pytest.mark.functional

UPLOAD_KEY = "incoming/yelp/businesses 2026-11-21.jsonl"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:coordinator:"


def sample_lines(count: int, *, bad_fraction: float = 0.0, seed: int = 7) -> bytes:
    lines = samples.iter_business_lines(count, seed=seed, bad_fraction=bad_fraction)
    return b"".join(line + b"\n" for line in lines)


def upload(cloud: Cloud, key: str, body: bytes) -> dict[str, Any]:
    """Put the object and return the EventBridge event S3 would send for it."""
    put = cloud.s3.put_object(Bucket=cloud.input_bucket, Key=key, Body=body)
    event = json.loads((EVENTS_DIR / "s3-object-created.json").read_text(encoding="utf-8"))
    detail = event["detail"]
    detail["bucket"]["name"] = cloud.input_bucket
    detail["object"].update(
        {
            "key": key.replace(" ", "+"),
            "size": len(body),
            "etag": put["ETag"].strip('"'),
            "version-id": put["VersionId"],
        }
    )
    return dict(event)


def plan_payload(trigger: Any, execution: str = "run-1") -> dict[str, Any]:
    return {
        "trigger": trigger,
        "execution_id": EXECUTION + execution,
        "started_at": "2026-11-22T06:00:01.000Z",
    }


def run_all_units(cloud: Cloud, plan: dict[str, Any]) -> list[dict[str, Any]]:
    units = storage.get_json(cloud.work_bucket, plan["manifest"]["key"])
    return [
        invoke(
            "process_items",
            {
                "run_id": plan["run_id"],
                "job": plan["job"],
                "unit": unit,
                "attempt": 1,
                "route": "lambda",
            },
        )
        for unit in units
    ]


def reference_output(body: bytes) -> list[dict[str, Any]]:
    return reference_review_scores(body)[0]


def read_outputs(cloud: Cloud, prefix: str) -> list[dict[str, Any]]:
    listed = cloud.s3.list_objects_v2(Bucket=cloud.output_bucket, Prefix=prefix + "part-")
    records = []
    for entry in sorted(listed.get("Contents", []), key=lambda e: e["Key"]):
        body = cloud.s3.get_object(Bucket=cloud.output_bucket, Key=entry["Key"])["Body"].read()
        records.extend(orjson.loads(line) for line in body.splitlines())
    return records


def test_upload_runs_end_to_end_through_the_handlers(cloud: Cloud) -> None:
    body = sample_lines(3000, bad_fraction=0.01)
    plan = invoke("plan", plan_payload(upload(cloud, UPLOAD_KEY, body)))
    assert plan["status"] == "PLANNED"
    assert plan["job"] == "yelp-business-scores"
    assert plan["manifest"]["bucket"] == cloud.work_bucket
    assert len(json.dumps(plan)) < 2048, "the plan state carries pointers, not items"

    results = run_all_units(cloud, plan)
    assert sum(r["succeeded"] for r in results) == plan["items"]

    outcome = invoke(
        "finalize",
        {"plan": plan, "fanout": {"map_run_arn": "arn:map"}, "execution_id": EXECUTION + "run-1"},
    )
    assert outcome["status"] == "SUCCEEDED"
    run = components.ledger().get_run(plan["run_id"])
    assert run is not None
    prefix = run["output_prefix"]
    assert read_outputs(cloud, prefix) == reference_output(body)
    assert run["records"] == len(reference_output(body)) > 2900
    assert run["rejects"] == len(reference_review_scores(body)[1]) > 0

    rejects_key = prefix + "rejects.jsonl"
    rejects = [orjson.loads(line) for line in storage.iter_lines(cloud.output_bucket, rejects_key)]
    lines = body.splitlines()
    for reject in rejects:
        assert lines[reject["line"] - 1].decode("utf-8", "replace")[:100] == reject["text"][:100]
    summary = storage.get_json(cloud.output_bucket, prefix + "_SUMMARY.json")
    assert summary["succeeded"] == plan["items"]
    assert summary["failed"] == 0


def test_repeated_delivery_is_one_run_and_a_new_version_is_another(cloud: Cloud) -> None:
    event = upload(cloud, UPLOAD_KEY, sample_lines(50))
    first = invoke("plan", plan_payload(event, "a"))
    again = invoke("plan", plan_payload(copy.deepcopy(event), "b"))
    assert first["status"] == "PLANNED"
    assert (again["status"], again["run_id"]) == ("DUPLICATE", first["run_id"])
    assert "manifest" not in again

    newer = invoke("plan", plan_payload(upload(cloud, UPLOAD_KEY, sample_lines(60)), "c"))
    assert newer["status"] == "PLANNED"
    assert newer["run_id"] != first["run_id"]


def test_upload_matching_no_job_is_recorded_as_ignored(cloud: Cloud) -> None:
    event = upload(cloud, "elsewhere/notes.txt", b"hello\n")
    plan = invoke("plan", plan_payload(event))
    assert plan["status"] == "IGNORED"
    listed = cloud.ddb.scan(TableName=cloud.table)["Items"]
    assert [item["status"]["S"] for item in listed] == ["IGNORED"]


def test_manual_start_without_a_key_names_the_field(cloud: Cloud) -> None:
    trigger = json.loads((EVENTS_DIR / "manual-start.json").read_text(encoding="utf-8"))
    trigger["input"] = {}
    with pytest.raises(InvalidInputError, match=r"input\.key"):
        invoke("plan", plan_payload(trigger))


def test_manual_start_processes_the_named_object(cloud: Cloud) -> None:
    body = sample_lines(100)
    cloud.s3.put_object(Bucket=cloud.input_bucket, Key="incoming/yelp/businesses.jsonl", Body=body)
    trigger = json.loads((EVENTS_DIR / "manual-start.json").read_text(encoding="utf-8"))
    plan = invoke("plan", plan_payload(trigger))
    assert plan["status"] == "PLANNED"
    run_all_units(cloud, plan)
    run = components.ledger().get_run(plan["run_id"])
    assert run is not None
    assert read_outputs(cloud, run["output_prefix"]) == reference_output(body)


def test_scheduled_start_plans_the_local_day_once(cloud: Cloud) -> None:
    trigger = json.loads((EVENTS_DIR / "scheduled.json").read_text(encoding="utf-8"))
    first = invoke("plan", plan_payload(trigger, "s1"))
    second = invoke("plan", plan_payload(trigger, "s2"))
    assert first["status"] == "PLANNED"
    assert first["routes"] == {"ecs": 1}
    assert first["params"]["URL_TEMPLATE"].endswith("ztf_public_{date}.tar.gz")
    assert second["status"] == "DUPLICATE"
    (unit,) = storage.get_json(cloud.work_bucket, first["manifest"]["key"])
    # 14:00 UTC is 06:00 in Los Angeles: the schedule's own time zone picks the day.
    assert unit["items"][0]["value"] == "20261122"


def test_a_job_without_a_schedule_refuses_scheduled_starts(cloud: Cloud) -> None:
    trigger = json.loads((EVENTS_DIR / "scheduled.json").read_text(encoding="utf-8"))
    trigger["job"] = "yelp-business-scores"
    with pytest.raises(InvalidInputError, match="has no schedule"):
        invoke("plan", plan_payload(trigger))


def test_a_failed_item_is_recorded_and_fails_the_run(cloud: Cloud) -> None:
    plan = invoke("plan", plan_payload(upload(cloud, UPLOAD_KEY, sample_lines(200))))
    # The object changes under the run: reading the planned version's ETag must fail.
    cloud.s3.put_object(Bucket=cloud.input_bucket, Key=UPLOAD_KEY, Body=sample_lines(10))
    units = storage.get_json(cloud.work_bucket, plan["manifest"]["key"])
    for unit in units:
        unit["items"][0]["jsonl"]["source"]["version_id"] = None
    with pytest.raises(ItemsFailedError):
        invoke(
            "process_items",
            {
                "run_id": plan["run_id"],
                "job": plan["job"],
                "unit": units[0],
                "attempt": 1,
                "route": "lambda",
            },
        )
    outcome = invoke("finalize", {"plan": plan, "fanout": {}, "execution_id": EXECUTION + "run-1"})
    assert outcome["status"] == "FAILED"
    assert "item 0" in outcome["cause"]
    items = list(components.ledger().iter_items(plan["run_id"]))
    assert [item["status"] for item in items] == ["FAILED"]
    assert items[0]["attempts"] == 1


def test_rerunning_a_unit_skips_items_that_succeeded(cloud: Cloud) -> None:
    plan = invoke("plan", plan_payload(upload(cloud, UPLOAD_KEY, sample_lines(100))))
    run_all_units(cloud, plan)
    again = run_all_units(cloud, plan)
    assert sum(result["skipped"] for result in again) == plan["items"]
    assert sum(result["succeeded"] for result in again) == 0


def test_worker_runs_a_unit_from_the_manifest(cloud: Cloud) -> None:
    plan = invoke("plan", plan_payload(upload(cloud, UPLOAD_KEY, sample_lines(100))))
    assert worker.main(["run-unit", "--run", plan["run_id"], "--unit", "0"]) == 0
    items = list(components.ledger().iter_items(plan["run_id"]))
    assert {(item["status"], item["route"]) for item in items} == {("SUCCEEDED", "ecs")}
    assert worker.main(["run-unit", "--run", plan["run_id"], "--unit", "99"]) == 2
    assert worker.main(["run-unit", "--run", "no-such-run", "--unit", "0"]) == 2
    assert worker.main(["bogus"]) == 2


def test_finalize_reads_unit_digests_and_items_of_units_that_never_reported(
    cloud: Cloud,
) -> None:
    body = sample_lines(400)
    cloud.s3.put_object(Bucket=cloud.input_bucket, Key="incoming/yelp/two.jsonl", Body=body)
    trigger = {"job": "yelp-business-scores", "input": {"key": "incoming/yelp/two.jsonl"}}
    plan = invoke("plan", plan_payload(trigger))
    units = storage.get_json(cloud.work_bucket, plan["manifest"]["key"])
    assert len(units) == 1
    run_all_units(cloud, plan)
    digests = components.ledger().unit_digests(plan["run_id"])
    assert [entry["status"] for entry in digests[(0, 0)]] == ["SUCCEEDED"]

    # A second run whose container never reported: the state machine marked its item failed
    # (RecordItemsFailed in the definition), and no digest exists for its unit.
    other = invoke("plan", plan_payload(trigger, "run-2"))
    (unit,) = storage.get_json(cloud.work_bucket, other["manifest"]["key"])
    failure = {"Error": "Stepburst.ContainerExitCode", "Cause": "exit 137", "exit_code": 137}
    components.ledger().put_items(
        other["run_id"],
        [
            {
                "sk": unit["items"][0]["sk"],
                "item": 0,
                "status": "FAILED",
                "route": "ecs",
                "error": failure["Error"],
                "failure": json.dumps(failure),
            }
        ],
    )
    outcome = invoke("finalize", {"plan": other, "fanout": {}, "execution_id": "arn:x"})
    assert outcome["status"] == "FAILED"
    assert outcome["failed_items"] == [
        {
            "item": 0,
            "route": "ecs",
            "error": "Stepburst.ContainerExitCode",
            "exit_code": 137,
            "reason": "exit 137",
        }
    ]
