"""Keys and names that one part writes and another finds: built once, in stepburst.layout.

The state machine builds three of them itself; these tests render its expressions and hold
them to the Python that looks the results up.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stepburst import layout
from stepburst.errors import InvalidInputError, JobSpecError
from stepburst.jobs import parse_job
from stepburst.planning import run_id_for
from stepburst.triggers import UploadTrigger, parse_trigger

from .asl_support import REPO, render_format, resolve, state

pytestmark = pytest.mark.unit

RUN_ID = "yelp-business-scores-20261121T060117Z-1a2b3c4d"
# What a child execution of the fan-out sees: the Map's ItemSelector.
CHILD_INPUT: dict[str, Any] = {"run_id": RUN_ID, "unit": {"index": 12}, "attempt": 2}
# Batch job names: up to 128 letters, numbers, hyphens and underscores, alphanumeric first.
# https://docs.aws.amazon.com/batch/latest/APIReference/API_SubmitJob.html
BATCH_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
# ECS RunTask startedBy: up to 128 letters, numbers, hyphens, forward slashes and underscores.
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html
ECS_STARTED_BY = re.compile(r"^[A-Za-z0-9/_-]{1,128}$")


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((REPO / "events" / name).read_text(encoding="utf-8"))
    return event


def longest_run_id() -> str:
    """A run id of the longest job name the schema allows."""
    document = {"split": {"items": {}}, "run": {"command": "true"}, "output": {"prefix": "o/"}}
    with pytest.raises(JobSpecError, match="name"):
        parse_job({**document, "name": "j" * 64}, "long.yaml")
    job = parse_job({**document, "name": "j" * 63}, "long.yaml")
    return run_id_for(job, datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "x")


# -- names the state machine builds ----------------------------------------------------------


def test_the_state_machine_marks_items_failed_under_the_run_partition() -> None:
    key = state("MarkItemFailed")["Parameters"]["Key"]
    assert render_format(key["pk"]["S.$"], CHILD_INPUT) == layout.run_pk(RUN_ID)
    # The sort key is the item's own, as the plan wrote it into the manifest.
    item = {"sk": layout.item_sort_key(7)}
    assert resolve(key["sk"]["S.$"], {**CHILD_INPUT, "item": item}) == item["sk"]


def test_batch_job_names_from_the_state_machine_are_found_by_cancel() -> None:
    parameters = state("RunOnBatch")["Parameters"]
    named = render_format(parameters["JobName.$"], CHILD_INPUT)
    assert named == layout.batch_job_name(RUN_ID, unit=12, attempt=2)
    assert layout.is_batch_job_of_run(named, RUN_ID)


def test_ecs_tasks_of_the_state_machine_are_found_by_cancel() -> None:
    parameters = state("RunOnEcs")["Parameters"]
    assert resolve(parameters["StartedBy.$"], CHILD_INPUT) == layout.ecs_started_by(RUN_ID)


@pytest.mark.parametrize(
    "name",
    [
        f"{RUN_ID}-x-unit-1-attempt-1",  # a run whose id begins with this one's
        RUN_ID[:-1] + "-unit-1-attempt-1",
        f"{RUN_ID}-unit-1-attempt-",
        f"{RUN_ID}-unit-one-attempt-1",
        f"x{RUN_ID}-unit-1-attempt-1",
    ],
)
def test_cancel_leaves_other_batch_jobs_alone(name: str) -> None:
    assert not layout.is_batch_job_of_run(name, RUN_ID)


def test_the_longest_run_names_its_containers_within_aws_limits() -> None:
    run_id = longest_run_id()
    assert BATCH_JOB_NAME.match(layout.batch_job_name(run_id, unit=9_999_999, attempt=99))
    assert ECS_STARTED_BY.match(layout.ecs_started_by(run_id))


# -- keys ------------------------------------------------------------------------------------


def test_run_output_lives_under_its_prefix() -> None:
    prefix = layout.output_prefix("scores/", RUN_ID)
    assert prefix == f"scores/{RUN_ID}/"
    keys = [
        layout.part_key(prefix, 3),
        layout.rejects_part_key(prefix, 3),
        layout.rejects_key(prefix),
        layout.summary_key(prefix),
    ]
    assert all(key.startswith(prefix) for key in keys)
    assert len(set(keys)) == len(keys)
    assert layout.part_key(prefix, 3) != layout.part_key(prefix, 4)


def test_each_redrive_has_its_own_manifest_and_results() -> None:
    keys = {layout.manifest_key(RUN_ID, redrive) for redrive in range(3)}
    prefixes = {layout.results_prefix(RUN_ID, redrive) for redrive in range(3)}
    assert len(keys) == len(prefixes) == 3
    assert layout.manifest_key(RUN_ID) == f"runs/{RUN_ID}/manifest.json"


def test_ledger_sort_keys_sort_by_number_and_fall_under_their_prefix() -> None:
    items = [layout.item_sort_key(index) for index in (2, 10, 100)]
    units = [layout.unit_sort_key(manifest, unit) for manifest, unit in ((0, 9), (0, 10), (1, 0))]
    assert items == sorted(items)
    assert units == sorted(units)
    assert all(key.startswith(layout.ITEM_PREFIX) for key in items)
    assert all(key.startswith(layout.UNIT_PREFIX) for key in units)


# -- trigger identities ----------------------------------------------------------------------


def test_upload_identity_is_the_same_from_the_event_and_after_the_upload() -> None:
    trigger = parse_trigger(load_event("s3-object-created.json"))
    assert isinstance(trigger, UploadTrigger)
    # The CLI knows the bucket, key and version id that PutObject returned.
    after_put = layout.upload_identity(trigger.bucket, trigger.key, version_id=trigger.version_id)
    assert trigger.identity == after_put
    # The form the ledger already holds for versioned buckets.
    assert trigger.identity == (
        "stepburst-input-example/incoming/yelp/businesses 2026-11-21.jsonl"
        "#3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
    )


@pytest.mark.parametrize("version_id", [None, "", "null"])
def test_an_unversioned_upload_is_named_by_its_sequencer(version_id: str | None) -> None:
    named = layout.upload_identity("b", "k", version_id=version_id, sequencer="0A1", etag="e")
    assert named == "b/k#0A1:e"
    # Without the event there is no sequencer: the upload cannot be named.
    assert layout.upload_identity("b", "k", version_id=version_id) is None


def test_an_unversioned_upload_event_without_a_sequencer_is_refused() -> None:
    event = load_event("s3-object-created.json")
    del event["detail"]["object"]["version-id"]
    del event["detail"]["object"]["sequencer"]
    with pytest.raises(InvalidInputError) as refused:
        parse_trigger(event)
    assert refused.value.field == "detail.object.sequencer"


def test_object_version_drops_what_s3_says_of_unversioned_objects() -> None:
    assert layout.object_version("3HL4") == "3HL4"
    assert layout.object_version("null") is None
    assert layout.object_version(None) is None


def test_schedule_identity_is_per_run() -> None:
    assert layout.schedule_identity("a") != layout.schedule_identity("b")


def test_the_layout_is_the_one_place_keys_are_built() -> None:
    """No other module of the product spells a key layout of its own."""
    spelled = re.compile(r"""["'](RUN#|ITEM#|UNIT#|TRIGGER#|runs/)|-unit-|_SUMMARY|part-\{""")
    sources = (REPO / "src" / "stepburst").rglob("*.py")
    offenders = [
        path.name
        for path in sources
        if path.name != "layout.py" and spelled.search(Path(path).read_text(encoding="utf-8"))
    ]
    assert offenders == []
