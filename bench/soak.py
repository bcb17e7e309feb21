"""Soak: many concurrent uploads of multi-unit files with faults injected, on the local engine.

Uploads N JSON-lines files at once to a copy of the Yelp scores job that splits them into
small ranges (several Lambda units each), while Lambda throttling and ECS capacity faults are
armed at random (a fixed seed). Every run is followed to its end; failed runs are redriven
once. Then the outputs in S3 are read back and compared with the inputs:

- records lost: non-blank input lines in neither an output part nor a rejects part (must be 0);
- duplicates: output records that appear more than once (must be 0);
- the ledger's counts against S3 (records and rejects per run).

    .venv/bin/python bench/soak.py                       # 50 uploads
    .venv/bin/python bench/soak.py --uploads 4 --lines 300   # what `make test` runs
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from stepburst_local import LocalEngine, samples

ROOT = Path(__file__).resolve().parents[1]
JOB_FILE = "yelp-business-scores.yaml"
PREFIX = "incoming/yelp/"
# Small ranges, so that each upload makes several units.
RANGE_MB = 0.05


def soak_jobs(scratch: Path) -> Path:
    jobs = scratch / "jobs"
    shutil.copytree(ROOT / "jobs", jobs, ignore=shutil.ignore_patterns("__pycache__"))
    spec = (jobs / JOB_FILE).read_text(encoding="utf-8")
    marker = "range_mb:"
    start = spec.index(marker)
    end = spec.index("\n", start)
    (jobs / JOB_FILE).write_text(spec[:start] + f"range_mb: {RANGE_MB}" + spec[end:], "utf-8")
    return jobs


def arm_faults(engine: LocalEngine, rng: random.Random, uploads: int) -> dict[str, int]:
    throttles = rng.randint(uploads, uploads * 3)
    capacity = rng.randint(0, uploads)
    engine.faults.lambda_throttle("ProcessItemsFunction", times=throttles)
    engine.faults.ecs_capacity(reason="RESOURCE:MEMORY", times=capacity)
    return {"lambda_throttles": throttles, "ecs_capacity": capacity}


def read_parts(engine: LocalEngine, bucket: str, prefix: str) -> tuple[list[bytes], list[bytes]]:
    """The lines of a run's output parts and of its rejects parts."""
    s3 = engine.client("s3")
    outputs: list[bytes] = []
    rejects: list[bytes] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            key = entry["Key"]
            if "/part-" not in key:
                continue
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            lines = [line for line in body.splitlines() if line]
            (rejects if "/rejects/" in key else outputs).extend(lines)
    return outputs, rejects


def make_files(scratch: Path, uploads: int, lines: int, seed: int) -> dict[str, list[bytes]]:
    files: dict[str, list[bytes]] = {}
    for index in range(uploads):
        content = list(samples.iter_business_lines(lines, seed=seed + index, bad_fraction=0.01))
        (scratch / f"soak-{index:03d}.jsonl").write_bytes(b"\n".join(content) + b"\n")
        files[f"{PREFIX}soak-{index:03d}.jsonl"] = content
    return files


def follow(
    engine: LocalEngine, arns: dict[str, str]
) -> tuple[dict[str, dict[str, Any]], Counter[str]]:
    """Each upload's run at its end, after one redrive of those that failed; and the failed
    items' classes before the redrive."""
    ledger = engine.ledger()
    runs: dict[str, dict[str, Any]] = {}
    redriven: Counter[str] = Counter()
    for key, arn in arns.items():
        link = ledger.execution_link(arn)
        run_id = str(link["run_id"]) if link else ""
        run = ledger.get_run(run_id) or {}
        if run.get("status") == "FAILED":
            redriven[f"run: {str(run.get('cause'))[:120]}"] += 1
            redriven.update(
                str(item.get("failure_class") or item.get("error"))
                for item in ledger.iter_items(run_id)
                if item.get("status") == "FAILED"
            )
            engine.wait_for_execution(engine.start_execution({"redrive": run_id}), timeout=1800)
            run = ledger.get_run(run_id) or {}
        runs[key] = run
    return runs, redriven


def audit(
    engine: LocalEngine, files: dict[str, list[bytes]], runs: dict[str, dict[str, Any]]
) -> dict[str, int]:
    """Inputs against what S3 holds and what the ledger says."""
    bucket = str(engine.outputs["OutputBucketName"])
    figures = Counter({"lost": 0, "duplicates": 0, "mismatched": 0})
    for key, run in runs.items():
        prefix = str(run.get("output_prefix") or "")
        outputs, rejects = read_parts(engine, bucket, prefix) if prefix else ([], [])
        seen = Counter(orjson.loads(line)["business_id"] for line in outputs)
        figures["duplicates"] += sum(count - 1 for count in seen.values() if count > 1)
        # Blank lines are neither records nor rejects: the processor counts and skips them.
        records_in = sum(1 for line in files[key] if line.strip())
        figures["lost"] += max(0, records_in - len(seen) - len(rejects))
        figures["mismatched"] += int(int(run.get("records") or 0) != len(outputs))
    return dict(figures)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--lines", type=int, default=1500, help="lines per uploaded file")
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        jobs = soak_jobs(scratch)
        files = make_files(scratch, args.uploads, args.lines, args.seed)
        with LocalEngine(ROOT, jobs_dir=jobs, time_scale=0.01, quiet=True) as engine:
            faults = arm_faults(engine, rng, args.uploads)
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda key: engine.upload(key, scratch / Path(key).name), files))
            arns = {key: engine.executions_for_upload(key, timeout=120)[0] for key in files}
            ended = {key: engine.wait_for_execution(arn, timeout=1800) for key, arn in arns.items()}
            engine.faults.clear()
            runs, redriven = follow(engine, arns)
            figures = audit(engine, files, runs)
    wall = time.perf_counter() - began
    completed = sum(1 for run in runs.values() if run.get("status") == "SUCCEEDED")
    statuses = Counter(str(described["status"]) for described in ended.values())
    print(f"soak: {args.uploads} concurrent uploads of {args.lines} lines, seed {args.seed}")
    print(f"  faults armed          {faults}")
    print(f"  first executions      {dict(statuses)}")
    print(f"  failed items, by class {dict(redriven)} (redriven once)")
    print(f"  runs completed        {completed} of {args.uploads}")
    print(f"  records lost          {figures['lost']}")
    print(f"  duplicated records    {figures['duplicates']}")
    print(f"  ledger != S3 (runs)   {figures['mismatched']}")
    print(f"  wall time             {wall:.1f} s ({wall / args.uploads:.2f} s per upload)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
