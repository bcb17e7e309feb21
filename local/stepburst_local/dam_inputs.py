"""Generated inputs for the ``dam-periods`` job, laid out as Cloudburst users keep theirs.

``root/Dam001/Period01/reservoir.json`` and ``inflow.csv`` (hourly inflow in m³/s: a daily
cycle, a storm and noise, seeded by the dam period so the same call writes the same files).
``stepburst sync root s3://bucket/input/ --zip-each 'Dam*/Period*'`` uploads each period as
``input/Dam001/Period01.zip``.
"""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

HOURS_PER_PERIOD = 24 * 14


def dam_periods(dams: range, periods: range) -> list[str]:
    return [f"Dam{dam:03d}/Period{period:02d}" for dam in dams for period in periods]


def write_period(root: Path, item: str, hours: int = HOURS_PER_PERIOD) -> Path:
    rng = random.Random(item)
    directory = root / item
    directory.mkdir(parents=True, exist_ok=True)
    capacity = rng.uniform(2.0e6, 6.0e6)
    reservoir = {
        "capacity_m3": round(capacity, 1),
        "initial_storage_m3": round(capacity * rng.uniform(0.3, 0.8), 1),
        "release_m3s": round(rng.uniform(11.0, 18.0), 3),
    }
    (directory / "reservoir.json").write_text(json.dumps(reservoir, indent=2) + "\n", "utf-8")
    storm_hour, storm_peak = rng.randrange(hours), rng.uniform(20.0, 80.0)
    with (directory / "inflow.csv").open("w", encoding="utf-8", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(["hour", "inflow_m3s"])
        for hour in range(hours):
            base = 10 + 4 * math.sin(2 * math.pi * hour / 24)
            storm = storm_peak * math.exp(-(((hour - storm_hour) / 18) ** 2))
            writer.writerow([hour, f"{max(0.0, base + storm + rng.gauss(0, 1.5)):.4f}"])
    return directory


def write_inputs(root: Path, items: list[str]) -> list[Path]:
    return [write_period(root, item) for item in items]
