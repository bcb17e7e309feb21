"""Wall time of ``make demo`` (``stepburst demo``), from a fresh process to its exit.

    .venv/bin/python bench/demo_wall_time.py [--repeat 3]

Runs the demo ``--repeat`` times as a user would (a new interpreter each time: imports, engine
start, both runs, summaries) and prints each wall time, the best and the median against the
15 s target. It reports, it does not fail (a failed demo run is reported as such).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 15.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    command = [str(Path(sys.executable).with_name("stepburst")), "demo", "--project", str(ROOT)]
    print(f"demo wall time: {' '.join(command)}  (python {platform.python_version()})")
    times = []
    for attempt in range(1, args.repeat + 1):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        outcome = "ok" if done.returncode == 0 else f"exit {done.returncode}"
        print(f"  run {attempt}: {elapsed:5.2f} s  {outcome}")
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
        times.append(elapsed)
    best, median = min(times), statistics.median(times)
    print(
        f"best {best:.2f} s, median {median:.2f} s against a {TARGET_SECONDS:.0f} s target "
        f"(ratio {median / TARGET_SECONDS:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
