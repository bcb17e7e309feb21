"""How long a run, its Finalize state and `stepburst status` take as runs grow, locally.

Runs a work-item job of N quick items end to end (Plan, Distributed Map of Lambda units,
Finalize) and reports the whole run's wall time, the Finalize state's duration from the
execution history, and the wall time of ``stepburst --local status RUN --json`` (a new
process, as a user runs it) against the run. Finalize reads one digest per unit (up to 100
items), so it should grow with units, not items.

Targets, for 100,000 items: the run in 3 minutes, Finalize and status in 10 s each. Prints
the figures and their ratios to the targets; it reports, it does not fail.

    .venv/bin/python bench/finalize_scale.py --items 1000 5000
    .venv/bin/python bench/finalize_scale.py --items 100000      # the targets' size
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stepburst_local import LocalEngine

ROOT = Path(__file__).resolve().parents[1]
TARGET_RUN_SECONDS = 180.0
TARGET_FINALIZE_SECONDS = 10.0
TARGET_STATUS_SECONDS = 10.0
TARGET_ITEMS = 100_000

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


def status_seconds(engine: LocalEngine, jobs: Path, run_id: str) -> tuple[float, str]:
    """Wall time of `stepburst status` in a new process, and the run status it printed."""
    command = [
        str(Path(sys.executable).with_name("stepburst")),
        "--local",
        "--endpoint",
        engine.endpoint_url,
        "--jobs-dir",
        str(jobs),
        "status",
        run_id,
        "--json",
    ]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    elapsed = time.perf_counter() - began
    if done.returncode not in (0, 1):  # 1: the run failed, which status reports
        return elapsed, f"status exit {done.returncode}: {done.stderr.strip()[-200:]}"
    return elapsed, str(json.loads(done.stdout).get("status"))


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
                run_id = str(engine.ledger().execution_link(arn)["run_id"])
                status_took, status = status_seconds(engine, jobs, run_id)
                print(
                    f"  {count:>7,} items  {described['status']:<9}  run {total:6.1f} s  "
                    f"Finalize {seconds:5.2f} s  status {status_took:5.2f} s ({status})"
                )
                print(
                    f"  {'':>7}        ratios to the {TARGET_ITEMS:,}-item targets: run "
                    f"{total / TARGET_RUN_SECONDS:.2f}, Finalize "
                    f"{seconds / TARGET_FINALIZE_SECONDS:.2f}, status "
                    f"{status_took / TARGET_STATUS_SECONDS:.2f}; run per item "
                    f"{1000 * total / count:.2f} ms (the target's: "
                    f"{1000 * TARGET_RUN_SECONDS / TARGET_ITEMS:.2f} ms)"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
