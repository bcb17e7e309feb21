"""Every way to split and run a job, planned and run through the real handlers on moto."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stepburst import components, storage
from stepburst.errors import InvalidInputError, ItemsFailedError
from stepburst.triggers import ManualStart

from .conftest import Cloud
from .handlers import invoke
from .test_coordinator import plan_payload

pytestmark = pytest.mark.functional

TASKS_JOB = """
name: dam-periods
split:
  items: {}
run:
  command: python -c "import sys; sys.exit(3 if '{ITEM}'.endswith('13') else 0)" {ITEM} {MODE_STR}
params:
  MODE_STR: quick
output:
  prefix: dams/
"""

OBJECTS_JOB = """
name: each-object
split:
  objects:
    prefix: drop/
    suffix: .txt
run:
  function: kinds_helpers:measure
output:
  prefix: measured/
params_open: true
input_schema:
  type: object
  properties:
    prefix: {type: string, pattern: "^drop/"}
  additionalProperties: false
"""

HELPERS = """
def measure(item, params):
    return {"item": item, "mode": params.get("MODE_STR", "")}
"""


@pytest.fixture
def jobs(cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped jobs plus two more, in a jobs directory of the test's own."""
    directory = tmp_path / "jobs"
    directory.mkdir()
    shipped = Path(__file__).resolve().parents[2] / "jobs"
    for path in shipped.iterdir():
        if path.suffix in (".yaml", ".py"):
            (directory / path.name).write_text(path.read_text(encoding="utf-8"), "utf-8")
    (directory / "dam-periods.yaml").write_text(TASKS_JOB, encoding="utf-8")
    (directory / "each-object.yaml").write_text(OBJECTS_JOB, encoding="utf-8")
    (directory / "kinds_helpers.py").write_text(HELPERS, encoding="utf-8")
    monkeypatch.setenv("STEPBURST_JOBS_DIR", str(directory))
    monkeypatch.syspath_prepend(str(directory))
    components.reset()
    return directory


def run_units(plan: dict[str, Any]) -> list[Any]:
    outcomes: list[Any] = []
    units = storage.get_json(plan["manifest"]["bucket"], plan["manifest"]["key"])
    for unit in units:
        payload = {
            "run_id": plan["run_id"],
            "job": plan["job"],
            "unit": unit,
            "attempt": 1,
            "route": "lambda",
            "params": plan.get("params", {}),
        }
        try:
            outcomes.append(invoke("process_items", payload))
        except ItemsFailedError as failure:
            outcomes.append(failure)
    return outcomes


def test_range_expression_runs_a_command_per_item(jobs: Path) -> None:
    trigger = {"job": "dam-periods", "input": {"items": "Dam001/Period01-16"}}
    plan = invoke("plan", plan_payload(trigger))
    assert plan["items"] == 16
    assert plan["environment"] == [{"Name": "MODE_STR", "Value": "quick"}]
    outcomes = run_units(plan)
    assert sum(isinstance(outcome, ItemsFailedError) for outcome in outcomes) == 1

    items = {item["value"]: item for item in components.ledger().iter_items(plan["run_id"])}
    assert items["Dam001/Period13"]["status"] == "FAILED"
    assert items["Dam001/Period13"]["exit_code"] == 3
    assert {items[name]["status"] for name in items if name != "Dam001/Period13"} == {"SUCCEEDED"}

    # A redrive plans only the failed item, and the ledger keeps both attempts.
    finalized = invoke("finalize", {"plan": plan, "fanout": {}, "execution_id": "e"})
    assert finalized["status"] == "FAILED"
    redrive = invoke("plan", plan_payload({"redrive": plan["run_id"]}, "redrive"))
    assert redrive["run_id"] == plan["run_id"]
    assert redrive["items"] == 1
    assert redrive["manifest"]["key"].endswith("redrive-1/manifest.json")
    run_units(redrive)
    record = components.ledger().get_items(plan["run_id"], [items["Dam001/Period13"]["sk"]])
    (again,) = record.values()
    assert again["attempts"] == 2
    assert again["history"][0]["status"] == "FAILED"
    assert again["history"][0]["exit_code"] == 3


def test_params_override_and_prefix_padding(jobs: Path) -> None:
    trigger = {
        "job": "dam-periods",
        "input": {"items": "1-3", "prefix": "Dam002/Period", "padding": 2},
        "params": {"MODE_STR": "full"},
    }
    draft = components.planner().preview(ManualStart.model_validate(trigger))
    assert [item.what for item in draft.summary.sample] == [
        "Dam002/Period01",
        "Dam002/Period02",
        "Dam002/Period03",
    ]
    assert draft.params == {"MODE_STR": "full"}
    assert draft.routes() == {"lambda": 3}


def test_undeclared_params_are_refused_unless_the_job_is_open(cloud: Cloud, jobs: Path) -> None:
    start = {"job": "dam-periods", "input": {"items": "a"}, "params": {"MODE": "full"}}
    with pytest.raises(InvalidInputError) as raised:
        invoke("plan", plan_payload(start))
    assert str(raised.value) == (
        "params.MODE: job 'dam-periods' declares no param 'MODE' (its params: MODE_STR; "
        "a job that takes any sets params_open: true)"
    )
    assert cloud.ddb.scan(TableName=cloud.table)["Items"] == []

    cloud.s3.put_object(Bucket=cloud.input_bucket, Key="drop/a.txt", Body=b"x")
    open_start = {"job": "each-object", "input": {}, "params": {"EXTRA": "1"}}
    draft = components.planner().preview(ManualStart.model_validate(open_start))
    assert draft.params == {"EXTRA": "1"}


def test_preview_writes_nothing(cloud: Cloud, jobs: Path) -> None:
    trigger = ManualStart.model_validate({"job": "dam-periods", "input": {"items": ["a", "b"]}})
    components.planner().preview(trigger)
    assert cloud.ddb.scan(TableName=cloud.table)["Items"] == []
    assert "Contents" not in cloud.s3.list_objects_v2(Bucket=cloud.work_bucket)


def test_items_from_a_list_file(cloud: Cloud, jobs: Path) -> None:
    cloud.s3.put_object(Bucket=cloud.input_bucket, Key="lists/dams.txt", Body=b"D1\n# x\nD2\n")
    trigger = ManualStart.model_validate(
        {"job": "dam-periods", "input": {"items_key": "lists/dams.txt"}}
    )
    assert [item.what for item in components.planner().preview(trigger).summary.sample] == [
        "D1",
        "D2",
    ]


@pytest.mark.parametrize(
    ("trigger", "field"),
    [
        ({"job": "dam-periods", "input": {}}, "input.items"),
        ({"job": "dam-periods", "input": {"items": [1]}}, "input.items[0]"),
        ({"job": "dam-periods", "input": {"items": "a", "padding": 0}}, "input.padding"),
        ({"job": "dam-periods", "input": {"items": "Dam001/Period01-"}}, "input.items"),
        ({"job": "dam-periods", "input": {"items": "01-", "prefix": "Dam/P"}}, "input.items"),
        ({"job": "dam-periods", "input": {"items": ["a"], "padding": 2}}, "input.padding"),
        ({"job": "dam-periods", "input": {"items": "Dam001", "padding": 2}}, "input.padding"),
        ({"job": "dam-periods", "input": {"items_key": "k", "padding": 2}}, "input.padding"),
        ({"job": "dam-periods", "input": {"items": "a"}, "params": {"1X": "v"}}, "params.1X"),
        ({"job": "dam-periods", "input": {"items": "a"}, "params": {"MODE": "v"}}, "params.MODE"),
        ({"job": "each-object", "input": {}, "params": {"1X": "v"}}, "params.1X"),
        ({"job": "each-object", "input": {"prefix": "elsewhere/"}}, "input.prefix"),
        ({"job": "each-object", "input": {"colour": "red"}}, "input"),
        ({"job": "ztf-alerts-daily", "input": {"date": "2019-3-2"}}, "input.date"),
    ],
)
def test_invalid_starts_name_the_field(jobs: Path, trigger: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        components.planner().preview(ManualStart.model_validate(trigger))
    assert raised.value.field == field


def test_max_items_is_checked_before_any_name_is_made(jobs: Path) -> None:
    planner = components.planner()
    start = ManualStart.model_validate({"job": "dam-periods", "input": {"items": "x1-2000000"}})
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInputError) as raised:
            planner.preview(start)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raised.value.field == "input.items"
    assert raised.value.problem == "2000000 items is over this job's max_items (1000000)"
    assert peak < 5_000_000


def test_list_files_take_the_prefix(cloud: Cloud, jobs: Path) -> None:
    cloud.s3.put_object(Bucket=cloud.input_bucket, Key="lists/periods.txt", Body=b"P1\nP2\n")
    trigger = ManualStart.model_validate(
        {"job": "dam-periods", "input": {"items_key": "lists/periods.txt", "prefix": "Dam9/"}}
    )
    assert [item.what for item in components.planner().preview(trigger).summary.sample] == [
        "Dam9/P1",
        "Dam9/P2",
    ]


def test_one_item_per_object_under_a_prefix(cloud: Cloud, jobs: Path) -> None:
    for key in ("drop/a.txt", "drop/b.txt", "drop/skip.csv", "other/c.txt"):
        cloud.s3.put_object(Bucket=cloud.input_bucket, Key=key, Body=b"x")
    plan = invoke("plan", plan_payload({"job": "each-object", "input": {}}))
    assert plan["items"] == 2
    run_units(plan)
    results = sorted(
        item["result"]["item"] for item in components.ledger().iter_items(plan["run_id"])
    )
    assert results == ["drop/a.txt", "drop/b.txt"]


def alert_tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for number in range(3):
            data = json.dumps({"candid": number}).encode() * 100
            info = tarfile.TarInfo(f"ZTF{number:04d}.avro")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def archive_server() -> Iterator[str]:
    body = alert_tarball()

    class Serve(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/alerts/ztf_public_20190302.tar.gz":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Serve)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts/ztf_public_{{date}}.tar.gz"
    server.shutdown()
    server.server_close()


def test_daily_archive_is_unpacked_into_s3(cloud: Cloud, jobs: Path, archive_server: str) -> None:
    assert gzip.decompress(alert_tarball())  # the fixture serves a real .tar.gz
    trigger = {
        "job": "ztf-alerts-daily",
        "input": {"date": "20190302"},
        "params": {"URL_TEMPLATE": archive_server},
    }
    plan = invoke("plan", plan_payload(trigger))
    assert plan["routes"] == {"ecs": 1}
    run_units(plan)
    (item,) = components.ledger().iter_items(plan["run_id"])
    assert item["status"] == "SUCCEEDED"
    assert item["result"]["members"] == 3
    listed = cloud.s3.list_objects_v2(Bucket=cloud.output_bucket, Prefix="ztf/alerts/")
    keys = sorted(entry["Key"].rsplit("/", 2)[-2:][1] for entry in listed["Contents"])
    assert keys == ["ZTF0000.avro", "ZTF0001.avro", "ZTF0002.avro"]
    assert all("/date=20190302/" in entry["Key"] for entry in listed["Contents"])
