"""Cloudburst's task pipeline as the job ``dam-periods``, end to end through the CLI.

Inputs are generated per dam period, zipped and uploaded with ``sync --zip-each``; each item
fetches and unzips its inputs, runs the reservoir model and stores its outputs zipped; the
outputs come back with ``sync --unzip`` and are checked against a mass balance computed here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.cli_runner import cli_output
from tests.polling import Pending, poll

from stepburst_local import LocalEngine
from stepburst_local.dam_inputs import dam_periods, write_inputs

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 120
ITEMS = dam_periods(range(1, 3), range(1, 4))


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(ROOT, time_scale=0.01, quiet=True) as running:
        yield running


def _json(engine: LocalEngine, *argv: str, check: int | None = 0) -> Any:
    return json.loads(cli_output(engine, *argv, "--json", check=check, timeout=DEADLINE_SECONDS))


def _expected(period: Path, step_hours: int) -> tuple[list[float], dict[str, float]]:
    """The reservoir's mass balance, written out again here as the check."""
    reservoir = json.loads((period / "reservoir.json").read_text(encoding="utf-8"))
    with (period / "inflow.csv").open(encoding="utf-8", newline="") as source:
        hourly = [float(row["inflow_m3s"]) for row in csv.DictReader(source)]
    storage = reservoir["initial_storage_m3"]
    levels, spilled, released = [], 0.0, 0.0
    for start in range(0, len(hourly), step_hours):
        chunk = hourly[start : start + step_hours]
        volume_in = sum(chunk) * 3600
        out = min(reservoir["release_m3s"] * 3600 * len(chunk), storage + volume_in)
        storage = storage + volume_in - out
        over = max(0.0, storage - reservoir["capacity_m3"])
        storage -= over
        spilled, released = spilled + over, released + out
        levels.append(storage)
    totals = {
        "inflow_m3": sum(hourly) * 3600,
        "released_m3": released,
        "spilled_m3": spilled,
        "final_storage_m3": storage,
    }
    return levels, totals


def test_inputs_up_pipeline_runs_outputs_down_and_check_out(
    engine: LocalEngine, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    write_inputs(inputs, ITEMS)
    input_bucket = engine.outputs["InputBucketName"]
    synced = _json(
        engine, "sync", str(inputs), f"s3://{input_bucket}/input/", "--zip-each", "Dam*/Period*"
    )
    assert synced["copied"] == len(ITEMS)

    started = _json(
        engine,
        "start",
        "dam-periods",
        "--items",
        "Dam001-002/Period01-03",
        "--param",
        "MODE_STR=full",
        "--apply",
    )
    run_id = started["run_id"]
    described = engine.wait_for_execution(started["execution_arn"], timeout=DEADLINE_SECONDS * 3)
    assert described["status"] == "SUCCEEDED", described

    def ended() -> dict[str, Any] | Pending:
        run = _json(engine, "status", run_id, check=None)
        return run if run["run"]["status"] != "RUNNING" else Pending(run["run"]["status"])

    status = poll(ended, what=f"run {run_id}'s record", timeout=30, interval=0.2)
    assert status["run"]["status"] == "SUCCEEDED", status
    assert status["items"] == {"SUCCEEDED": len(ITEMS)}
    items = {item["value"]: item for item in _json(engine, "items", run_id)["items"]}
    assert sorted(items) == ITEMS
    assert all(item["status"] == "SUCCEEDED" for item in items.values())

    output_bucket = engine.outputs["OutputBucketName"]
    out = tmp_path / "out"
    fetched = _json(engine, "sync", f"s3://{output_bucket}/dams/{run_id}/", str(out), "--unzip")
    assert fetched["unzipped"] == len(ITEMS)
    for item in ITEMS:
        produced = out / item / "out"
        summary = json.loads((produced / "summary.json").read_text(encoding="utf-8"))
        with (produced / "storage.csv").open(encoding="utf-8", newline="") as source:
            stored = [float(row["storage_m3"]) for row in csv.DictReader(source)]
        levels, totals = _expected(inputs / item, step_hours=1)
        assert summary["item"] == item
        assert summary["mode"] == "full"
        assert summary["steps"] == len(levels) == len(stored) == 24 * 14
        assert stored == pytest.approx(levels, abs=0.01)
        for name, value in totals.items():
            assert summary[name] == pytest.approx(value, abs=0.01), (item, name)
        # Mass is conserved: what came in went out, spilled, or is still held.
        start = json.loads((inputs / item / "reservoir.json").read_text())["initial_storage_m3"]
        balance = start + summary["inflow_m3"] - summary["released_m3"] - summary["spilled_m3"]
        assert balance == pytest.approx(summary["final_storage_m3"], abs=0.01)
    # The periods differ: each item read its own inputs.
    inflows = {
        json.loads((out / i / "out" / "summary.json").read_text())["inflow_m3"] for i in ITEMS
    }
    assert len(inflows) == len(ITEMS)


def test_an_item_without_inputs_fails_at_its_fetch_step(engine: LocalEngine) -> None:
    started = _json(engine, "start", "dam-periods", "--items", "Dam999/Period01", "--apply")
    described = engine.wait_for_execution(started["execution_arn"], timeout=DEADLINE_SECONDS * 3)
    assert described["status"] in ("SUCCEEDED", "FAILED"), described
    (item,) = _json(engine, "items", started["run_id"], check=None)["items"]
    assert item["status"] == "FAILED"
    assert item["failed_step"] == 0
    assert item["failed_step_kind"] == "fetch"
