"""`stepburst demo rios`: the RIOS workload runs to its mosaic and says where it is."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile

from stepburst_local.workloads import EXIT_OK, run_workload

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_prints_the_mosaic_its_stats_and_a_copy_to_look_at() -> None:
    out = io.StringIO()

    assert run_workload("rios", ROOT, out=out) == EXIT_OK, out.getvalue()

    text = out.getvalue()
    assert "12/12 blocks succeeded on batch; combine SUCCEEDED" in text
    assert re.search(r"mosaic: s3://\S+/rios/ndvi/rios-ndvi-\S+/ndvi\.tif", text)
    stats = re.search(r"shape 768x1024, NDVI min (\S+) max (\S+) mean (\S+), (\d+) nodata", text)
    assert stats is not None, text
    copy = re.search(r"a copy is at (\S+);", text)
    assert copy is not None, text
    mosaic = tifffile.imread(copy[1])
    assert mosaic.shape == (768, 1024)
    assert float(stats[1]) == pytest.approx(float(np.nanmin(mosaic)), abs=5e-4)
    assert float(stats[2]) == pytest.approx(float(np.nanmax(mosaic)), abs=5e-4)
    assert int(stats[4]) == int(np.isnan(mosaic).sum())
