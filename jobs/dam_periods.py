"""Simulate one dam's reservoir over one period: ``python -m dam_periods Dam001/Period03``.

A command-line program like the ones task pipelines run per work item: it takes the item and
a mode, computes, and stores its result as JSON under the run's output prefix (the runner
passes OUTPUT_BUCKET and OUTPUT_PREFIX in the environment).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys

from stepburst.storage import put_json

STEPS = {"quick": 24 * 7, "full": 24 * 90}
CAPACITY = 1_000.0


def simulate(item: str, steps: int) -> dict[str, float]:
    """Hourly inflow with a daily cycle and noise, a fixed release, spills above capacity."""
    rng = random.Random(item)
    level, spilled, lowest = CAPACITY / 2, 0.0, CAPACITY
    for hour in range(steps):
        inflow = max(0.0, 10 + 6 * math.sin(2 * math.pi * hour / 24) + rng.gauss(0, 3))
        level += inflow - 10.5
        if level > CAPACITY:
            spilled += level - CAPACITY
            level = CAPACITY
        level = max(level, 0.0)
        lowest = min(lowest, level)
    return {
        "final_level": round(level, 3),
        "lowest_level": round(lowest, 3),
        "spilled": round(spilled, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dam_periods", description=__doc__)
    parser.add_argument("item", help="Dam<id>/Period<nn>")
    parser.add_argument("--mode", choices=sorted(STEPS), default="quick")
    args = parser.parse_args(argv)
    result = {"item": args.item, "mode": args.mode, **simulate(args.item, STEPS[args.mode])}
    key = f"{os.environ['OUTPUT_PREFIX']}{args.item}.json"
    put_json(os.environ["OUTPUT_BUCKET"], key, result)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
