"""NDVI over a two-band GeoTIFF, block by block, as a RIOS "main" script and its workers do.

- :func:`blocks` (``split.function``) reads the raster's header only, with ranged GETs, and
  yields one item per block, named ``<key>[row0:row1,col0:col1]`` (the key travels in the name:
  an item sees only its name and the run's params).
- :func:`ndvi_block` (``run.function``) fetches just the TIFF tiles or strips its block
  overlaps (one ranged GET each), computes NDVI = (NIR - Red) / (NIR + Red) in float32 and
  writes the block as a float32 TIFF under the run's folder. Where NIR + Red is 0 (nodata in
  both bands) NDVI is NaN, and the mosaic says so with GDAL_NODATA "nan".
- :func:`mosaic` (``combine.function``) places every block, checks they cover the raster
  exactly once from one version of it, and writes ``ndvi.tif``: a tiled, deflated float32
  GeoTIFF with the source's georeferencing. Its result has the shape and NDVI statistics.

Red and NIR are the bands RED_BAND and NIR_BAND (1-based, as GDAL and RIOS count them).
"""

from __future__ import annotations

import io
import math
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from stepburst.combining import read_manifest
from stepburst.parquet_records import S3File
from stepburst.settings import settings
from stepburst.storage import S3Object, get_bytes, head_object, put_bytes, put_file

DEFAULT_BLOCK = 256
# One worker's NDVI throughput and the fixed cost of an item's S3 requests, for routing.
PIXELS_PER_SECOND = 20_000_000
SECONDS_PER_BLOCK = 1.0
# tifffile reads tag by tag; each buffered GET brings this much header at once.
HEADER_READ_BYTES = 16 * 1024
# GeoTIFF tags copied from the source to the mosaic: ModelPixelScale, ModelTiepoint,
# ModelTransformation, GeoKeyDirectory, GeoDoubleParams, GeoAsciiParams.
GEO_TAGS = (33550, 33922, 34264, 34735, 34736, 34737)
GDAL_NODATA = 42113
MOSAIC_TILE = 256
MOSAIC_NAME = "ndvi.tif"
_BLOCK_NAME = re.compile(r"^(?P<key>.+)\[(?P<r0>\d+):(?P<r1>\d+),(?P<c0>\d+):(?P<c1>\d+)\]$")


class RasterError(ValueError):
    """The raster or a block is not what this job can process."""


class _RangedObject(S3File):
    """A seekable, read-only view of an S3 object that fetches only the bytes read, and counts
    them."""

    def __init__(self, obj: S3Object, size: int, etag: str) -> None:
        super().__init__(obj, size, etag)
        self.fetched = 0

    def read_at(self, start: int, end: int) -> bytes:
        # IfMatch: a raster replaced while its blocks are read fails the item, never mixes.
        data = super().read_at(start, end)
        self.fetched += len(data)
        return data


@dataclass(frozen=True)
class _Raster:
    """A TIFF's first image, opened over ranged reads; its pixel data is not read."""

    source: _RangedObject
    tiff: tifffile.TiffFile
    page: tifffile.TiffPage

    @classmethod
    def open(cls, bucket: str, key: str) -> _Raster:
        obj = S3Object(bucket, key)
        info = head_object(obj)
        source = _RangedObject(obj, info.size, info.etag)
        try:
            tiff = tifffile.TiffFile(io.BufferedReader(source, HEADER_READ_BYTES))
        except tifffile.TiffFileError as exc:
            raise RasterError(f"s3://{bucket}/{key} is not a TIFF: {exc}") from exc
        page = tiff.pages.first
        if not isinstance(page, tifffile.TiffPage):
            raise RasterError(f"s3://{bucket}/{key}: its first image is a frame, not a page")
        return cls(source, tiff, page)

    @property
    def height(self) -> int:
        return int(self.page.imagelength)

    @property
    def width(self) -> int:
        return int(self.page.imagewidth)

    @property
    def bands(self) -> int:
        return int(self.page.samplesperpixel)

    @property
    def separate(self) -> bool:
        return bool(self.page.planarconfig == tifffile.PLANARCONFIG.SEPARATE) and self.bands > 1

    @property
    def segment(self) -> tuple[int, int]:
        """Rows and columns of a tile, or of a strip (whole rows)."""
        if self.page.is_tiled:
            return int(self.page.tilelength), int(self.page.tilewidth)
        return min(int(self.page.rowsperstrip), self.height), self.width

    def read_block(self, rows: tuple[int, int], cols: tuple[int, int], band: int) -> np.ndarray:
        """One band (0-based) of a block, from the segments it overlaps only."""
        seg_rows, seg_cols = self.segment
        down = math.ceil(self.height / seg_rows)
        across = math.ceil(self.width / seg_cols)
        out = np.empty((rows[1] - rows[0], cols[1] - cols[0]), dtype=self.page.dtype)
        decode = self.page.decode
        for tile_row in range(rows[0] // seg_rows, (rows[1] - 1) // seg_rows + 1):
            for tile_col in range(cols[0] // seg_cols, (cols[1] - 1) // seg_cols + 1):
                index = tile_row * across + tile_col
                if self.separate:
                    index += band * down * across
                offset = int(self.page.dataoffsets[index])
                count = int(self.page.databytecounts[index])
                segment, _, _ = decode(self.source.read_at(offset, offset + count), index)
                if segment is None:  # a sparse TIFF's empty tile
                    raise RasterError(f"segment {index} of the raster has no data")
                pixels = segment[0, :, :, 0 if self.separate else band]
                top, left = tile_row * seg_rows, tile_col * seg_cols
                r0, r1 = max(rows[0], top), min(rows[1], top + seg_rows)
                c0, c1 = max(cols[0], left), min(cols[1], left + seg_cols)
                out[r0 - rows[0] : r1 - rows[0], c0 - cols[0] : c1 - cols[0]] = pixels[
                    r0 - top : r1 - top, c0 - left : c1 - left
                ]
        return out

    def geo_tags(self) -> list[tuple[int, int, int, Any, bool]]:
        """The georeferencing tags, as tifffile writes them (code, type, count, value)."""
        tags = []
        for code in GEO_TAGS:
            tag = self.page.tags.get(code)
            if tag is not None:
                value = tag.value
                count = len(value) if isinstance(value, tuple | list) else tag.count
                tags.append((code, int(tag.dtype), count, value, True))
        return tags

    def close(self) -> None:
        self.tiff.close()


def _input_bucket(params: Mapping[str, str]) -> str:
    """Split functions are told the input bucket; items and combine steps run where the
    stack's settings are in the environment (Lambda, the worker image)."""
    return params.get("INPUT_BUCKET") or settings().input_bucket


def _positive(given: Mapping[str, Any], name: str) -> int:
    value = given.get(name, DEFAULT_BLOCK)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RasterError(f"input.{name} must be a whole number of pixels >= 1, got {value!r}")
    return value


def _band(params: Mapping[str, str], name: str, bands: int) -> int:
    """A 1-based band number from the params, as a 0-based index."""
    text = params.get(name, "")
    if not text.isdigit() or not 1 <= int(text) <= bands:
        raise RasterError(f"param {name} must be a band number from 1 to {bands}, got {text!r}")
    return int(text) - 1


def block_name(key: str, rows: tuple[int, int], cols: tuple[int, int]) -> str:
    return f"{key}[{rows[0]}:{rows[1]},{cols[0]}:{cols[1]}]"


def parse_block_name(name: str) -> tuple[str, tuple[int, int], tuple[int, int]]:
    match = _BLOCK_NAME.match(name)
    if match is None:
        raise RasterError(f"{name!r} is not a block name (<key>[row0:row1,col0:col1])")
    rows = (int(match["r0"]), int(match["r1"]))
    cols = (int(match["c0"]), int(match["c1"]))
    if rows[0] >= rows[1] or cols[0] >= cols[1]:
        raise RasterError(f"{name!r} is an empty block")
    return match["key"], rows, cols


def blocks(given: Mapping[str, Any], params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    """``split.function``: one item per block of ``input.key``, from the header alone."""
    key = given.get("key")
    if not isinstance(key, str) or not key:
        raise RasterError("input.key must name a raster in the input bucket")
    block_rows = _positive(given, "block_rows")
    block_cols = _positive(given, "block_cols")
    raster = _Raster.open(_input_bucket(params), key)
    try:
        for name in ("RED_BAND", "NIR_BAND"):
            _band(params, name, raster.bands)
        height, width = raster.height, raster.width
    finally:
        raster.close()
    for row in range(0, height, block_rows):
        for col in range(0, width, block_cols):
            rows = (row, min(row + block_rows, height))
            cols = (col, min(col + block_cols, width))
            pixels = (rows[1] - rows[0]) * (cols[1] - cols[0])
            yield {
                "name": block_name(key, rows, cols),
                "seconds": SECONDS_PER_BLOCK + pixels / PIXELS_PER_SECOND,
            }


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """(NIR - Red) / (NIR + Red) in float32; NaN where NIR + Red is 0."""
    red32 = red.astype(np.float32)
    nir32 = nir.astype(np.float32)
    total = nir32 + red32
    out = np.full(total.shape, np.nan, dtype=np.float32)
    np.divide(nir32 - red32, total, out=out, where=total != 0)
    return out


def ndvi_block(item: str, params: Mapping[str, str]) -> dict[str, Any]:
    """``run.function``: NDVI of one block, written as a float32 TIFF in the run's folder."""
    key, rows, cols = parse_block_name(item)
    raster = _Raster.open(_input_bucket(params), key)
    try:
        if rows[1] > raster.height or cols[1] > raster.width:
            raise RasterError(f"{item} lies outside the {raster.height}x{raster.width} raster")
        red = raster.read_block(rows, cols, _band(params, "RED_BAND", raster.bands))
        nir = raster.read_block(rows, cols, _band(params, "NIR_BAND", raster.bands))
        height, width = raster.height, raster.width
    finally:
        raster.close()
    values = ndvi(red, nir)
    block_key = f"{params['OUTPUT_PREFIX']}blocks/r{rows[0]:06d}_c{cols[0]:06d}.tif"
    encoded = io.BytesIO()
    tifffile.imwrite(encoded, values, photometric="minisblack")
    put_bytes(params["OUTPUT_BUCKET"], block_key, encoded.getvalue(), "image/tiff")
    return {
        "block_key": block_key,
        "raster": key,
        "etag": raster.source.etag,
        "rows": list(rows),
        "cols": list(cols),
        "raster_shape": [height, width],
        "bytes_read": raster.source.fetched,
        "nodata": int(np.isnan(values).sum()),
    }


def mosaic(manifest_key: str, params: Mapping[str, str]) -> dict[str, Any]:
    """``combine.function``: every block into one GeoTIFF, and the NDVI's statistics."""
    bucket = params["OUTPUT_BUCKET"]
    results = [
        item["result"]
        for item in read_manifest(params["COMBINE_MANIFEST_BUCKET"], manifest_key)
        if item.get("status") == "SUCCEEDED" and item.get("result")
    ]
    if not results:
        raise RasterError("no block succeeded: nothing to mosaic")
    sources = {(result["raster"], result["etag"]) for result in results}
    if len(sources) != 1:
        raise RasterError(f"the blocks come from {len(sources)} rasters or versions: {sources}")
    ((key, _),) = sources
    height, width = results[0]["raster_shape"]
    values = np.full((height, width), np.nan, dtype=np.float32)
    covered = np.zeros((height, width), dtype=np.uint8)
    for result in results:
        (r0, r1), (c0, c1) = result["rows"], result["cols"]
        block = tifffile.imread(io.BytesIO(get_bytes(bucket, result["block_key"])))
        values[r0:r1, c0:c1] = block
        covered[r0:r1, c0:c1] += 1
    if not (covered == 1).all():
        missing, twice = int((covered == 0).sum()), int((covered > 1).sum())
        raise RasterError(f"the blocks leave {missing} pixels uncovered and {twice} covered twice")
    source = _Raster.open(_input_bucket(params), key)
    try:
        geo_tags = source.geo_tags()
    finally:
        source.close()
    output_key = f"{params['OUTPUT_PREFIX']}{MOSAIC_NAME}"
    with tempfile.TemporaryDirectory(prefix="rios-ndvi-") as folder:
        path = Path(folder) / MOSAIC_NAME
        tifffile.imwrite(
            path,
            values,
            photometric="minisblack",
            tile=(MOSAIC_TILE, MOSAIC_TILE),
            compression="zlib",
            extratags=[*geo_tags, (GDAL_NODATA, "s", 0, "nan", True)],
        )
        put_file(bucket, output_key, path)
    valid = values[~np.isnan(values)]
    return {
        "output_bucket": bucket,
        "output_key": output_key,
        "source_key": key,
        "shape": [height, width],
        "blocks": len(results),
        "nodata_pixels": int(values.size - valid.size),
        "ndvi_min": float(valid.min()) if valid.size else None,
        "ndvi_max": float(valid.max()) if valid.size else None,
        "ndvi_mean": float(valid.mean(dtype=np.float64)) if valid.size else None,
    }
