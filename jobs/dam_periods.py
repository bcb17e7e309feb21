"""Simulate one dam's reservoir over one period: ``python -m dam_periods Dam001/Period03``.

A command-line program like the ones task pipelines run per work item. It reads the period's
inputs from a directory (``reservoir.json``: capacity, initial storage and the release rule,
in cubic metres and m³/s; ``inflow.csv``: the hourly inflow series) and writes its outputs to
another: ``storage.csv`` (the storage at the end of each time step) and ``summary.json``.

The mass balance, per time step of ``dt`` seconds:
``storage += (inflow - release) * dt``, where the release is the rule's target flow limited to
what the reservoir holds; water above capacity spills. ``full`` steps hourly; ``quick`` steps
daily over the days' mean inflows (a day's hours that are present).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

HOUR_SECONDS = 3600
STEP_HOURS = {"quick": 24, "full": 1}


@dataclass(frozen=True)
class Reservoir:
    capacity_m3: float
    initial_storage_m3: float
    release_m3s: float


def read_inputs(directory: Path) -> tuple[Reservoir, list[float]]:
    described = json.loads((directory / "reservoir.json").read_text(encoding="utf-8"))
    reservoir = Reservoir(
        capacity_m3=float(described["capacity_m3"]),
        initial_storage_m3=float(described["initial_storage_m3"]),
        release_m3s=float(described["release_m3s"]),
    )
    with (directory / "inflow.csv").open(encoding="utf-8", newline="") as source:
        inflows = [float(row["inflow_m3s"]) for row in csv.DictReader(source)]
    if not inflows:
        raise ValueError(f"{directory / 'inflow.csv'} has no rows")
    return reservoir, inflows


def mass_balance(
    reservoir: Reservoir, hourly_inflows: list[float], step_hours: int
) -> tuple[list[float], dict[str, float]]:
    """The storage after each step and the period's totals (m³)."""
    storage = reservoir.initial_storage_m3
    levels: list[float] = []
    inflow_total = released = spilled = 0.0
    for start in range(0, len(hourly_inflows), step_hours):
        hours = hourly_inflows[start : start + step_hours]
        seconds = len(hours) * HOUR_SECONDS
        inflow = sum(hours) / len(hours) * seconds
        release = min(reservoir.release_m3s * seconds, storage + inflow)
        storage += inflow - release
        spill = max(0.0, storage - reservoir.capacity_m3)
        storage -= spill
        inflow_total += inflow
        released += release
        spilled += spill
        levels.append(storage)
    summary = {
        "steps": len(levels),
        "inflow_m3": round(inflow_total, 3),
        "released_m3": round(released, 3),
        "spilled_m3": round(spilled, 3),
        "final_storage_m3": round(storage, 3),
        "lowest_storage_m3": round(min(levels), 3),
        "highest_storage_m3": round(max(levels), 3),
    }
    return levels, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dam_periods", description=__doc__)
    parser.add_argument("item", help="Dam<id>/Period<nn>")
    parser.add_argument("--mode", choices=sorted(STEP_HOURS), default="quick")
    parser.add_argument("--inputs", type=Path, default=Path("inputs"), help="input directory")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory")
    args = parser.parse_args(argv)
    try:
        reservoir, inflows = read_inputs(args.inputs)
    except (OSError, ValueError, KeyError) as error:
        print(f"dam_periods: {args.item}: unreadable inputs: {error}", file=sys.stderr)
        return 2
    levels, summary = mass_balance(reservoir, inflows, STEP_HOURS[args.mode])
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "storage.csv").open("w", encoding="utf-8", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(["step", "storage_m3"])
        writer.writerows((index, f"{level:.3f}") for index, level in enumerate(levels))
    result = {"item": args.item, "mode": args.mode, **summary}
    (args.out / "summary.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
