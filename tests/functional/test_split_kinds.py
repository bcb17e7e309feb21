"""split.function, split.csv and split.parquet: planned by the Plan handler, run by units."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stepburst import components
from stepburst.split_functions import SplitFunctionError

from .conftest import Cloud
from .handlers import invoke
from .test_coordinator import plan_payload
from .test_job_kinds import run_units

pytestmark = pytest.mark.functional

JOBS = {
    "blocks.yaml": """
name: blocks
split:
  function:
    function: split_helpers:blocks
    max_items: 5
run:
  function: split_helpers:work
compute:
  platform: lambda
output:
  prefix: blocks/
""",
    "broken.yaml": """
name: broken
split:
  function:
    function: split_helpers:broken
run:
  function: split_helpers:work
output:
  prefix: broken/
""",
    "table-csv.yaml": """
name: table-csv
split:
  csv:
    range_mb: 0.00002
run:
  function: split_helpers:shout
output:
  prefix: csv/
""",
    "table-parquet.yaml": """
name: table-parquet
split:
  parquet: {}
run:
  function: split_helpers:shout
output:
  prefix: parquet/
""",
}

HELPERS = """
from stepburst.records import RejectRecord


def blocks(given, params):
    for row in range(int(given["rows"])):
        yield {"name": f"{params.get('IMAGE', 'img')}/block-{row}", "seconds": 2}


def broken(given, params):
    yield "first"
    raise ValueError("the raster has no blocks")


def work(item, params):
    return {"item": item}


def shout(record):
    if record.get("name") == "bad":
        raise RejectRecord("bad name")
    return {**record, "name": str(record["name"]).upper()}
"""


@pytest.fixture
def jobs(cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "jobs"
    directory.mkdir()
    for name, text in JOBS.items():
        (directory / name).write_text(text, encoding="utf-8")
    (directory / "split_helpers.py").write_text(HELPERS, encoding="utf-8")
    monkeypatch.setenv("STEPBURST_JOBS_DIR", str(directory))
    monkeypatch.syspath_prepend(str(directory))
    components.reset()
    return directory


def output_records(cloud: Cloud, prefix: str) -> list[dict[str, Any]]:
    listed = cloud.s3.list_objects_v2(Bucket=cloud.output_bucket, Prefix=prefix)
    records = []
    for entry in sorted(listed.get("Contents", []), key=lambda e: e["Key"]):
        if "reject" in entry["Key"]:
            continue
        body = cloud.s3.get_object(Bucket=cloud.output_bucket, Key=entry["Key"])["Body"].read()
        records += [orjson.loads(line) for line in body.splitlines() if line]
    return records


def test_a_split_function_decides_the_items(cloud: Cloud, jobs: Path) -> None:
    plan = invoke("plan", plan_payload({"job": "blocks", "input": {"rows": 3}}))
    assert plan["items"] == 3
    run_units(plan)
    items = {item["value"]: item for item in components.ledger().iter_items(plan["run_id"])}
    assert sorted(items) == ["img/block-0", "img/block-1", "img/block-2"]
    assert {item["estimated_seconds"] for item in items.values()} == {2}
    assert {item["status"] for item in items.values()} == {"SUCCEEDED"}


def test_a_split_function_that_raises_or_yields_too_many_fails_the_plan(jobs: Path) -> None:
    with pytest.raises(SplitFunctionError) as raised:
        invoke("plan", plan_payload({"job": "broken", "input": {}}))
    assert str(raised.value) == ("split_helpers:broken raised ValueError: the raster has no blocks")
    with pytest.raises(SplitFunctionError, match=r"more than this job's max_items \(5\)"):
        invoke("plan", plan_payload({"job": "blocks", "input": {"rows": 6}}))


def test_a_csv_object_runs_in_ranges_that_each_read_the_header(cloud: Cloud, jobs: Path) -> None:
    body = b'name,note\r\nada,"two\r\nlines"\r\nbad,x\r\nbob,"say ""hi"""\r\ncy,\r\n'
    cloud.s3.put_object(Bucket=cloud.input_bucket, Key="tables/people.csv", Body=body)
    plan = invoke("plan", plan_payload({"job": "table-csv", "input": {"key": "tables/people.csv"}}))
    assert plan["items"] >= 2
    run_units(plan)
    assert output_records(cloud, "csv/") == [
        {"name": "ADA", "note": "two\r\nlines"},
        {"name": "BOB", "note": 'say "hi"'},
        {"name": "CY", "note": ""},
    ]
    items = list(components.ledger().iter_items(plan["run_id"]))
    assert sum(item["rejects"] for item in items) == 1


def test_a_parquet_object_has_one_item_per_row_group(cloud: Cloud, jobs: Path) -> None:
    table = pa.table({"name": ["a", "b", "bad", "c", "d", "e"], "score": [1, 2, 3, 4, 5, 6]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=2)
    key = "tables/scores.parquet"
    cloud.s3.put_object(Bucket=cloud.input_bucket, Key=key, Body=buffer.getvalue())
    plan = invoke("plan", plan_payload({"job": "table-parquet", "input": {"key": key}}))
    assert plan["items"] == 3
    run_units(plan)
    assert [record["name"] for record in output_records(cloud, "parquet/")] == [
        "A",
        "B",
        "C",
        "D",
        "E",
    ]
