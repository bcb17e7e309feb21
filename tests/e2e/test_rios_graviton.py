"""RIOS on x86 or Graviton, both in one stack: ``rios-ndvi-graviton`` runs the same blocks on
the stack's arm64 EC2 Batch capacity, and its mosaic is the x86 job's NDVI, pixel for pixel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.e2e.cli_runner import finished_run
from tests.e2e.test_rios_workload import _mosaic, whole_raster_ndvi

from stepburst.jobs import JobCatalog
from stepburst.layout import job_own_queue
from stepburst_local import LocalEngine
from stepburst_local.rasters import two_band_scene, write_geotiff

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BLOCK = 512


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(ROOT, time_scale=0.01, quiet=True) as running:
        yield running


def test_the_two_rios_jobs_differ_only_in_where_they_run() -> None:
    catalog = JobCatalog.from_directory(ROOT / "jobs")
    x86, arm = catalog.get("rios-ndvi"), catalog.get("rios-ndvi-graviton")

    assert (x86.compute.architecture, arm.compute.architecture) == ("x86_64", "arm64")
    assert arm.compute.batch is not None
    assert arm.compute.batch.instance_types == ["m7g"]
    assert (arm.split, arm.run, arm.combine) == (x86.split, x86.run, x86.combine)
    assert arm.input_schema == x86.input_schema
    assert arm.params == x86.params


def test_graviton_blocks_run_on_the_arm64_queue_and_mosaic_alike(
    engine: LocalEngine, tmp_path: Path
) -> None:
    scene = two_band_scene()
    raster = write_geotiff(tmp_path / "field.tif", scene, tiled=True)
    engine.client("s3").upload_file(
        str(raster), engine.outputs["InputBucketName"], "rasters/graviton.tif"
    )
    arn = engine.start_execution(
        {
            "job": "rios-ndvi-graviton",
            "input": {"key": "rasters/graviton.tif", "block_rows": BLOCK, "block_cols": BLOCK},
            "params": {},
        }
    )
    run = finished_run(engine, arn)

    assert run["status"] == "SUCCEEDED", run.get("cause")
    assert run["combine_status"] == "SUCCEEDED"
    items = list(engine.ledger().iter_items(str(run["run_id"])))
    _, height, width = scene.shape
    assert len(items) == -(-height // BLOCK) * -(-width // BLOCK)
    assert {item["route"] for item in items} == {"batch"}

    stack = engine.outputs["StackName"]
    batch = engine.client("batch")
    # Its instance types give the job an environment and queue of its own.
    ran = batch.list_jobs(
        jobQueue=job_own_queue(stack, "rios-ndvi-graviton"), jobStatus="SUCCEEDED"
    )
    names = [job["jobName"] for job in ran["jobSummaryList"]]
    assert sum(name.startswith(str(run["run_id"])) for name in names) == len(items)

    page = _mosaic(engine, run["combine_result"])
    np.testing.assert_array_equal(page.asarray(), whole_raster_ndvi(scene))
