"""A small, realistic two-band raster for the RIOS NDVI job: red and near-infrared.

Surface reflectance scaled by 10,000 (uint16, as Landsat and Sentinel-2 products store it)
over a scene of smooth fields: a few paddocks of crop and pasture with a gentle vegetation
gradient, bare ground and a water body, plus a handful of pixels that are 0 in both bands
(nodata, where NDVI is undefined). Written as a tiled (or stripped) GeoTIFF with the two bands
as separate planes, georeferenced on a 30 m UTM grid (zone 55 south, EPSG:32755).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile

HEIGHT = 768
WIDTH = 1024
TILE = 256
PIXEL_METRES = 30.0
# The upper-left corner of the grid, in metres (EPSG:32755, south-eastern Australia).
ORIGIN = (500_000.0, 6_100_000.0)
EPSG = 32755
NODATA_PIXELS = 37


def two_band_scene(
    height: int = HEIGHT, width: int = WIDTH, *, seed: int = 3
) -> np.ndarray[Any, np.dtype[np.uint16]]:
    """``(2, height, width)`` uint16: band 1 red, band 2 near-infrared."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    y, x = rows / height, cols / width
    # Vegetation fraction: smooth waves across the scene, sharper within each paddock.
    cover = 0.45 + 0.25 * np.sin(2.1 * np.pi * x) * np.cos(1.3 * np.pi * y)
    paddocks = (np.floor(x * 5) + 3 * np.floor(y * 4)) % 4
    cover += np.choose(paddocks.astype(int), [0.3, -0.25, 0.1, -0.05])
    cover = np.clip(cover + rng.normal(0, 0.02, cover.shape), 0.0, 1.0)
    red = 0.12 - 0.09 * cover
    nir = 0.18 + 0.32 * cover
    # A lake: dark in the near-infrared, so NDVI goes negative there.
    lake = (x - 0.78) ** 2 / 0.01 + (y - 0.3) ** 2 / 0.02 < 1
    red[lake], nir[lake] = 0.04, 0.02
    bands = np.stack([red, nir]) * 10_000
    scene: np.ndarray[Any, np.dtype[np.uint16]] = np.clip(np.rint(bands), 1, 10_000).astype(
        np.uint16
    )
    # Nodata: a few scattered pixels and the corner the sensor's swath missed.
    spots = rng.choice(height * width, NODATA_PIXELS, replace=False)
    scene[:, spots // width, spots % width] = 0
    scene[:, :3, :5] = 0
    return scene


def write_geotiff(path: Path, scene: np.ndarray[Any, np.dtype[Any]], *, tiled: bool = True) -> Path:
    """The scene as a GeoTIFF, deflated, bands as separate planes; tiles or 64-row strips."""
    layout: dict[str, object] = {"tile": (TILE, TILE)} if tiled else {"rowsperstrip": 64}
    geo_keys = (
        *(1, 1, 0, 4),  # version 1.1.0, four keys follow
        *(1024, 0, 1, 1),  # GTModelTypeGeoKey: projected
        *(1025, 0, 1, 1),  # GTRasterTypeGeoKey: pixel is area
        *(3072, 0, 1, EPSG),  # ProjectedCSTypeGeoKey
        *(3076, 0, 1, 9001),  # ProjLinearUnitsGeoKey: metre
    )
    tifffile.imwrite(
        path,
        scene,
        photometric="minisblack",
        planarconfig="separate",
        compression="zlib",
        metadata=None,
        extratags=[
            (33550, "d", 3, (PIXEL_METRES, PIXEL_METRES, 0.0), True),
            (33922, "d", 6, (0.0, 0.0, 0.0, *ORIGIN, 0.0), True),
            (34735, "H", len(geo_keys), geo_keys, True),
        ],
        **layout,  # type: ignore[arg-type]
    )
    return path


def write_scene(
    path: Path, height: int = HEIGHT, width: int = WIDTH, *, tiled: bool = True
) -> Path:
    """Generate the scene and write it to ``path``."""
    return write_geotiff(path, two_band_scene(height, width), tiled=tiled)
