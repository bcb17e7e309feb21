"""rios-ndvi's own functions over an in-memory S3: blocks of every TIFF layout it reads.

Each layout (tiles or strips; bands as planes or interleaved; deflated or not) is split into
blocks that do not line up with its tiles; every block's NDVI, and the mosaic of them all, must
equal NDVI computed on the whole raster at once.
"""

from __future__ import annotations

import importlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import tifffile

from stepburst_local.rasters import two_band_scene, write_geotiff

pytestmark = pytest.mark.functional

BUCKET = "rios-blocks"
HEIGHT, WIDTH = 150, 230


@pytest.fixture(scope="module")
def rios_ndvi(s3: Any) -> Any:
    """The job's module, imported from jobs/ as Lambda and the worker import it."""
    return importlib.import_module("rios_ndvi")


def whole_ndvi(scene: np.ndarray) -> np.ndarray:
    red, nir = scene[0].astype(np.float32), scene[1].astype(np.float32)
    total = nir + red
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total == 0, np.float32(np.nan), (nir - red) / total)


def _write(path: Path, scene: np.ndarray, layout: str) -> None:
    if layout == "tiled-planes":
        write_geotiff(path, scene, tiled=True)
    elif layout == "strips-planes":
        write_geotiff(path, scene, tiled=False)
    elif layout == "tiled-interleaved":
        tifffile.imwrite(path, scene.transpose(1, 2, 0), planarconfig="contig", tile=(64, 64))
    else:  # one strip, uncompressed, bands interleaved
        tifffile.imwrite(path, scene.transpose(1, 2, 0), planarconfig="contig")


def _params(**extra: str) -> dict[str, str]:
    return {
        "RED_BAND": "1",
        "NIR_BAND": "2",
        "INPUT_BUCKET": BUCKET,
        "OUTPUT_BUCKET": BUCKET,
        "OUTPUT_PREFIX": "out/",
        **extra,
    }


@pytest.mark.parametrize(
    "layout", ["tiled-planes", "strips-planes", "tiled-interleaved", "one-strip-interleaved"]
)
def test_every_block_and_the_mosaic_equal_whole_raster_ndvi(
    s3: Any, rios_ndvi: Any, tmp_path: Path, layout: str
) -> None:
    scene = two_band_scene(HEIGHT, WIDTH, seed=5)
    path = tmp_path / "scene.tif"
    _write(path, scene, layout)
    key = f"in/{layout}.tif"
    s3.upload_file(str(path), BUCKET, key)
    params = _params(OUTPUT_PREFIX=f"out/{layout}/")
    expected = whole_ndvi(scene)

    items = list(rios_ndvi.blocks({"key": key, "block_rows": 70, "block_cols": 100}, params))

    assert len(items) == 3 * 3
    assert items[-1]["name"] == f"{key}[140:150,200:230]"
    assert all(item["seconds"] > 0 for item in items)
    manifest = []
    for index, item in enumerate(items):
        result = rios_ndvi.ndvi_block(item["name"], params)
        (r0, r1), (c0, c1) = result["rows"], result["cols"]
        body = s3.get_object(Bucket=BUCKET, Key=result["block_key"])["Body"].read()
        np.testing.assert_array_equal(tifffile.imread(io.BytesIO(body)), expected[r0:r1, c0:c1])
        manifest.append({"item": index, "status": "SUCCEEDED", "result": result})
    s3.put_object(
        Bucket=BUCKET,
        Key=f"manifests/{layout}.jsonl",
        Body=b"".join(orjson.dumps(line) + b"\n" for line in manifest),
    )

    combined = rios_ndvi.mosaic(
        f"manifests/{layout}.jsonl", {**params, "COMBINE_MANIFEST_BUCKET": BUCKET}
    )

    assert combined["shape"] == [HEIGHT, WIDTH]
    assert combined["nodata_pixels"] == int(np.isnan(expected).sum())
    body = s3.get_object(Bucket=BUCKET, Key=combined["output_key"])["Body"].read()
    np.testing.assert_array_equal(tifffile.imread(io.BytesIO(body)), expected)


def test_a_missing_block_fails_the_mosaic(s3: Any, rios_ndvi: Any, tmp_path: Path) -> None:
    path = tmp_path / "scene.tif"
    write_geotiff(path, two_band_scene(HEIGHT, WIDTH), tiled=True)
    s3.upload_file(str(path), BUCKET, "in/gap.tif")
    params = _params(OUTPUT_PREFIX="out/gap/")
    names = [item["name"] for item in rios_ndvi.blocks({"key": "in/gap.tif"}, params)]
    assert names == ["in/gap.tif[0:150,0:230]"]
    result = rios_ndvi.ndvi_block("in/gap.tif[0:150,0:200]", params)
    s3.put_object(
        Bucket=BUCKET,
        Key="manifests/gap.jsonl",
        Body=orjson.dumps({"item": 0, "status": "SUCCEEDED", "result": result}),
    )
    with pytest.raises(rios_ndvi.RasterError, match="4500 pixels uncovered"):
        rios_ndvi.mosaic("manifests/gap.jsonl", {**params, "COMBINE_MANIFEST_BUCKET": BUCKET})


REFUSALS = [
    ({}, {}, "input.key must name a raster"),
    ({"key": "in/scene.tif", "block_rows": 0}, {}, "input.block_rows must be"),
    ({"key": "in/scene.tif"}, {"NIR_BAND": "3"}, "NIR_BAND must be a band number from 1 to 2"),
]


@pytest.mark.parametrize("refusal", REFUSALS)
def test_bad_input_or_params_are_refused_with_the_field(
    s3: Any,
    rios_ndvi: Any,
    tmp_path: Path,
    refusal: tuple[dict[str, Any], dict[str, str], str],
) -> None:
    given, params, message = refusal
    path = tmp_path / "scene.tif"
    write_geotiff(path, two_band_scene(64, 64), tiled=False)
    s3.upload_file(str(path), BUCKET, "in/scene.tif")
    with pytest.raises(rios_ndvi.RasterError, match=message):
        list(rios_ndvi.blocks(given, _params(**params)))
