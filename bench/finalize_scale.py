"""How long the Finalize state takes as runs grow, on the local engine.

Runs a work-item job of N quick items end to end (Plan, Distributed Map of Lambda units,
Finalize) and reports the Finalize state's duration from the execution history, per 1,000
items. Finalize reads one digest per unit (up to 100 items), so it should grow with units.

    .venv/bin/python bench/finalize_scale.py --items 1000 5000
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from stepburst_local import LocalEngine

ROOT = Path(__file__).resolve().parents[1]

JOB = """
name: bench-quick-items
split:
  items: {}
run:
  function: bench_quick:work
compute:
  platform: lambda
max_concurrency: 100
output:
  prefix: bench/quick/
"""

WORK = """
def work(item, params):
    return None
"""


def state_seconds(events: list[dict[str, Any]], state: str) -> float:
    entered = next(
        e["timestamp"]
        for e in events
        if e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == state
    )
    exited = next(
        e["timestamp"]
        for e in events
        if e["type"].endswith("StateExited") and e["stateExitedEventDetails"]["name"] == state
    )
    return float((exited - entered).total_seconds())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[1000, 5000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        jobs = Path(scratch) / "jobs"
        shutil.copytree(ROOT / "jobs", jobs, ignore=shutil.ignore_patterns("__pycache__"))
        (jobs / "bench-quick-items.yaml").write_text(JOB, encoding="utf-8")
        (jobs / "bench_quick.py").write_text(WORK, encoding="utf-8")
        with LocalEngine(ROOT, jobs_dir=jobs, time_scale=0.01, quiet=True) as engine:
            print("Finalize on the local engine (moto), by run size")
            for count in args.items:
                began = time.perf_counter()
                arn = engine.start_execution(
                    {"job": "bench-quick-items", "input": {"items": f"item-1-{count}"}}
                )
                described = engine.wait_for_execution(arn, timeout=1800)
                total = time.perf_counter() - began
                seconds = state_seconds(engine.history(arn), "Finalize")
                print(
                    f"  {count:>7,} items  {described['status']:<9}  run {total:6.1f} s  "
                    f"Finalize {seconds:5.2f} s  ({1000 * seconds / count:.2f} s per 1,000 items)"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
