"""How long planning takes and how much memory it needs, by run size.

Each size is planned in a child process of its own (the Plan function's work: validate, split,
route, group, write the manifest, record the run) against an in-process moto for the ledger
and S3, with the manifest's bytes sent to /dev/null so that moto's copy of them is not counted.
The child's peak RSS comes from the kernel (``os.wait4``, the per-child form of
``getrusage(RUSAGE_CHILDREN)``). Targets: 1,000,000 items in 10 s and 200 MB.

    .venv/bin/python bench/plan_scale.py                         # 10k, 100k and 1M items
    .venv/bin/python bench/plan_scale.py --sizes 1000 --kind function --preview
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 10.0
TARGET_MB = 200.0
TARGET_ITEMS = 1_000_000
BUCKETS = {
    "input": "bench-input",
    "output": "bench-output",
    "work": "bench-work",
}

ITEMS_JOB = """
name: bench-items
split:
  items:
    max_items: 10000000
run:
  function: bench_plan:work
max_concurrency: 1000
output:
  prefix: bench/items/
"""

FUNCTION_JOB = """
name: bench-function
split:
  function:
    function: bench_plan:blocks
    max_items: 10000000
run:
  function: bench_plan:work
max_concurrency: 1000
output:
  prefix: bench/function/
"""

MODULE = """
def work(item, params):
    return None


def blocks(given, params):
    # A raster's blocks, as a RIOS-style main job would decide them.
    for row in range(int(given["count"])):
        yield {"name": f"block-{row:08d}", "seconds": 2.0}
"""


class _DevNullWriter:
    """Stands in for ``storage.MultipartWriter``: bytes are counted and dropped."""

    def __init__(self, bucket: str, key: str, **_: Any) -> None:
        self.bytes_written = 0
        self._sink = open(os.devnull, "wb")  # noqa: SIM115 - closed by close/abort

    def __enter__(self) -> _DevNullWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, data: bytes) -> None:
        self.bytes_written += len(data)
        self._sink.write(data)

    def close(self) -> None:
        self._sink.close()

    def abort(self) -> None:
        self._sink.close()


def _child(count: int, kind: str, preview: bool, jobs: Path) -> None:
    import boto3
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_NAMESPACE="bench",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    from stepburst import storage
    from stepburst.jobs import JobCatalog
    from stepburst.ledger import Ledger
    from stepburst.planning import Planner, PlanRequest
    from stepburst.settings import Settings
    from stepburst.triggers import ManualStart

    written = {"bytes": 0}

    def put_json(bucket: str, key: str, document: Any) -> None:
        import orjson

        written["bytes"] += len(orjson.dumps(document))

    storage.put_json = put_json  # type: ignore[assignment]
    storage.MultipartWriter = _DevNullWriter  # type: ignore[assignment,misc]

    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in BUCKETS.values():
            s3.create_bucket(Bucket=bucket)
        boto3.client("dynamodb").create_table(
            TableName="ledger",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        settings = Settings(
            ledger_table="ledger",
            input_bucket=BUCKETS["input"],
            output_bucket=BUCKETS["output"],
            work_bucket=BUCKETS["work"],
            jobs_dir=jobs,
            event_bus_name="default",
            retention_days=30,
            stack_name="bench",
        )
        planner = Planner(settings, JobCatalog.from_directory(jobs), Ledger("ledger", 30))
        if kind == "items":
            start = ManualStart(job="bench-items", input={"items": f"item-1-{count}"})
        else:
            start = ManualStart(job="bench-function", input={"count": str(count)})
        began = time.perf_counter()
        if preview:
            planner.preview(start)
            units = items = -1
        else:
            request = PlanRequest(
                trigger=start,
                execution_id="arn:aws:states:us-east-1:123456789012:execution:sm:bench",
                started_at="2026-01-01T00:00:00Z",
            )
            plan = planner.plan(request)
            units, items = plan.units, plan.items
        seconds = time.perf_counter() - began
    if items not in (-1, count):
        raise SystemExit(f"planned {items} items, expected {count}")
    print(f"{seconds:.3f} {units}", flush=True)


def _measure(count: int, kind: str, preview: bool, jobs: Path) -> tuple[float, float, int]:
    """Seconds planning took, the child's peak RSS in MB, and the units it made."""
    arguments = [sys.executable, __file__, "--child", str(count), "--kind", kind]
    arguments += ["--jobs", str(jobs)] + (["--preview"] if preview else [])
    process = subprocess.Popen(arguments, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"planning {count} items failed (exit {process.returncode})")
    seconds, units = output.split()
    # ru_maxrss is in KiB on Linux.
    return float(seconds), usage.ru_maxrss / 1024, int(units)


def _label(count: int) -> str:
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    if count >= 1000 and count % 1000 == 0:
        return f"{count // 1000}k"
    return str(count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--kind",
        choices=("items", "function"),
        default="items",
        help="a range expression (split.items) or a split function that yields every item",
    )
    parser.add_argument("--preview", action="store_true", help="plan without writing (the CLI)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child, args.kind, args.preview, args.jobs)
        return 0
    what = "preview" if args.preview else "plan"
    print(f"Planning ({what}, split.{args.kind}) by run size: seconds and peak RSS")
    with tempfile.TemporaryDirectory() as scratch:
        jobs = Path(scratch)
        job = ITEMS_JOB if args.kind == "items" else FUNCTION_JOB
        (jobs / f"bench-{args.kind}.yaml").write_text(job, encoding="utf-8")
        (jobs / "bench_plan.py").write_text(MODULE, encoding="utf-8")
        for count in args.sizes:
            seconds, megabytes, units = _measure(count, args.kind, args.preview, jobs)
            # The targets are for 1M items; smaller and larger runs scale the time target.
            time_target = TARGET_SECONDS * count / TARGET_ITEMS
            shown_units = f"{units:,} units" if units >= 0 else "preview"
            print(
                f"  {_label(count)}: {seconds:.2f} s ({seconds / time_target:.2f}x of "
                f"{time_target:g} s target), {megabytes:.0f} MB ({megabytes / TARGET_MB:.2f}x "
                f"of {TARGET_MB:g} MB), {shown_units}",
                flush=True,
            )
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"  largest child peak RSS: {children.ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
