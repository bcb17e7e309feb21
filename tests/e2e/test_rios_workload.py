"""The RIOS raster workload end to end on the local engine, started through the CLI.

A generated two-band GeoTIFF (red, near-infrared) is uploaded; ``rios-ndvi`` names its blocks
from the header, computes NDVI block by block on the Batch route and mosaics the blocks. The
mosaic must equal NDVI computed here on the whole raster at once, pixel for pixel.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from tests.e2e.cli_runner import cli_output, finished_run, run_cli

from stepburst_local import LocalEngine
from stepburst_local.rasters import two_band_scene, write_geotiff

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(ROOT, time_scale=0.01, quiet=True) as running:
        yield running


def whole_raster_ndvi(scene: np.ndarray) -> np.ndarray:
    """NDVI of the whole raster at once, float32, NaN where NIR + Red is 0."""
    red, nir = scene[0].astype(np.float32), scene[1].astype(np.float32)
    total = nir + red
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total == 0, np.float32(np.nan), (nir - red) / total)


def _run_ndvi(
    engine: LocalEngine, raster: Path, key: str, **given: int
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """Upload the raster, start the job through the CLI; the preview, run and items."""
    engine.client("s3").upload_file(str(raster), engine.outputs["InputBucketName"], key)
    started = json.loads(
        cli_output(
            engine,
            "start",
            "rios-ndvi",
            "--input",
            json.dumps({"key": key, **given}),
            "--apply",
            "--json",
        )
    )
    run = finished_run(engine, str(started["execution_arn"]))
    items = sorted(engine.ledger().iter_items(run["run_id"]), key=lambda item: int(item["item"]))
    return started, run, items


def _mosaic(engine: LocalEngine, result: dict[str, Any]) -> tifffile.TiffPage:
    body = (
        engine.client("s3")
        .get_object(Bucket=result["output_bucket"], Key=result["output_key"])["Body"]
        .read()
    )
    page = tifffile.TiffFile(io.BytesIO(body)).pages.first
    assert isinstance(page, tifffile.TiffPage)
    return page


def test_the_mosaic_equals_ndvi_of_the_whole_raster(engine: LocalEngine, tmp_path: Path) -> None:
    scene = two_band_scene()
    raster = write_geotiff(tmp_path / "field.tif", scene, tiled=True)
    _, height, width = scene.shape
    blocks = math.ceil(height / 256) * math.ceil(width / 256)

    started, run, items = _run_ndvi(engine, raster, "rasters/field.tif")

    assert started["items"] == blocks
    assert started["routes"] == {"batch": blocks}
    assert run["status"] == "SUCCEEDED", run.get("cause")
    assert int(run["planned_items"]) == blocks
    assert int(run["succeeded"]) == blocks
    assert int(run.get("failed") or 0) == 0
    assert len(items) == blocks
    assert {item["status"] for item in items} == {"SUCCEEDED"}
    assert {item["route"] for item in items} == {"batch"}
    assert run["combine_status"] == "SUCCEEDED"
    assert items[0]["value"] == "rasters/field.tif[0:256,0:256]"
    # Ranged reads: a block fetches its own tiles and a little header, not the raster.
    size = raster.stat().st_size
    assert max(int(item["result"]["bytes_read"]) for item in items) < size / 4
    assert sum(int(item["result"]["bytes_read"]) for item in items) < size * 1.1

    expected = whole_raster_ndvi(scene)
    result = run["combine_result"]
    page = _mosaic(engine, result)
    mosaic = page.asarray()
    assert mosaic.dtype == np.float32
    assert mosaic.shape == (height, width)
    np.testing.assert_array_equal(mosaic, expected)  # NaN where expected is NaN, too
    assert result["shape"] == [height, width]
    assert result["blocks"] == blocks
    assert result["nodata_pixels"] == int(np.isnan(expected).sum()) > 0
    assert result["ndvi_min"] == pytest.approx(float(np.nanmin(expected)))
    assert result["ndvi_max"] == pytest.approx(float(np.nanmax(expected)))
    assert result["ndvi_mean"] == pytest.approx(float(np.nanmean(expected, dtype=np.float64)))
    assert -1 <= result["ndvi_min"] < 0 < result["ndvi_max"] <= 1  # the lake and the crops
    # Still a GeoTIFF on the source's grid, with NaN declared as nodata.
    source = tifffile.TiffFile(raster).pages.first
    assert isinstance(source, tifffile.TiffPage)
    for code in (33550, 33922, 34735):
        assert page.tags[code].value == source.tags[code].value
    assert page.tags[42113].value == "nan"
    assert page.is_tiled


def test_a_stripped_raster_in_blocks_across_its_strips(engine: LocalEngine, tmp_path: Path) -> None:
    scene = two_band_scene(300, 500, seed=11)
    raster = write_geotiff(tmp_path / "strips.tif", scene, tiled=False)

    _, run, items = _run_ndvi(engine, raster, "rasters/strips.tif", block_rows=100, block_cols=200)

    assert run["status"] == "SUCCEEDED", run.get("cause")
    assert [item["value"] for item in items][:4] == [
        "rasters/strips.tif[0:100,0:200]",
        "rasters/strips.tif[0:100,200:400]",
        "rasters/strips.tif[0:100,400:500]",
        "rasters/strips.tif[100:200,0:200]",
    ]
    assert len(items) == 9
    assert {(item["status"], item["route"]) for item in items} == {("SUCCEEDED", "batch")}
    mosaic = _mosaic(engine, run["combine_result"]).asarray()
    np.testing.assert_array_equal(mosaic, whole_raster_ndvi(scene))


def test_a_key_that_is_not_a_raster_is_refused_with_its_cause(engine: LocalEngine) -> None:
    engine.client("s3").put_object(
        Bucket=engine.outputs["InputBucketName"], Key="rasters/notes.txt", Body=b"not a tiff"
    )
    completed = run_cli(engine, "start", "rios-ndvi", "--input", '{"key": "rasters/notes.txt"}')
    assert completed.returncode != 0
    assert "rios_ndvi:blocks raised RasterError" in completed.stderr
    assert "is not a TIFF" in completed.stderr
    assert "Traceback" not in completed.stderr
