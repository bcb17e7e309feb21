"""``make demo``: the whole stack on the local engine, as a user would see it on AWS.

It starts the engine on the project's template, uploads a realistic Yelp sample (routed to
Lambda) and a larger archive (routed to an ECS Fargate container), follows both runs, then
prints each run's summary from the ledger and where its outputs are.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from stepburst_local.engine import LocalEngine

EXIT_OK = 0
EXIT_FAILED = 1

# The shipped sample is what a user uploads; the archive is generated, large enough to show
# the container route.
SAMPLE_FILE = Path("samples") / "yelp_businesses.jsonl"
SAMPLE_KEY = "incoming/yelp/businesses.jsonl"
ARCHIVE_KEY = "incoming/yelp-archive/businesses-archive.jsonl"
SAMPLE_BYTES = 2_000_000
ARCHIVE_BYTES = 12_000_000


class _Discard(io.TextIOBase):
    """Where the functions' and interpreter's own prints go during the demo."""

    def write(self, text: str) -> int:
        return len(text)


@dataclass
class _Followed:
    label: str
    key: str
    arn: str = ""
    status: str = "RUNNING"
    state: str = ""
    map_run_arn: str = ""
    counts: tuple[int, int, int] = (0, 0, 0)
    run_id: str = ""
    seen: set[str] = field(default_factory=set)


def run_demo(
    project: Path,
    *,
    out: TextIO | None = None,
    sample_bytes: int = SAMPLE_BYTES,
    archive_bytes: int = ARCHIVE_BYTES,
    timeout: float = 180.0,
) -> int:
    """Run the demo; 0 when both runs succeed."""
    stream = out or sys.stdout
    began = time.monotonic()

    def say(text: str = "") -> None:
        print(text, file=stream, flush=True)

    say("stepburst demo: template.yaml and statemachines/coordinator.asl.json on the local engine")
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(_Discard()),
        tempfile.TemporaryDirectory(prefix="stepburst-demo-") as scratch,
        LocalEngine(project, time_scale=0.01, quiet=True) as engine,
    ):
        warnings.simplefilter("ignore")  # the functions' own warnings are for their logs
        say(f"  engine up in {time.monotonic() - began:.1f} s on {engine.endpoint_url}")
        say(f"  input bucket   s3://{engine.outputs['InputBucketName']}")
        say(f"  state machine  {engine.state_machine_arn}")
        say()
        runs = _upload_samples(engine, Path(scratch), sample_bytes, archive_bytes, say)
        ok = _follow(engine, runs, began, timeout, say)
        say()
        for run in runs:
            _summarize(engine, run, say)
        say(
            f"done in {time.monotonic() - began:.1f} s. The outputs lived in the in-memory S3; "
            "`stepburst local up` keeps a stack running for `aws --endpoint-url ...`."
        )
    return EXIT_OK if ok else EXIT_FAILED


def _upload_samples(
    engine: LocalEngine, scratch: Path, sample_bytes: int, archive_bytes: int, say: Any
) -> list[_Followed]:
    from stepburst_local import samples

    shipped = engine.project_root / SAMPLE_FILE
    sample = shipped if shipped.is_file() else scratch / "businesses.jsonl"
    if sample is shipped:
        with sample.open("rb") as lines_of:
            sample_lines = sum(1 for _ in lines_of)
    else:
        sample_lines = samples.write_business_file(sample, sample_bytes, seed=7, bad_fraction=0.01)
    archive = scratch / "businesses-archive.jsonl"
    archive_lines = samples.write_business_file(archive, archive_bytes, seed=11)
    runs = []
    for label, key, path, lines in (
        ("yelp sample (Lambda)", SAMPLE_KEY, sample, sample_lines),
        ("yelp archive (ECS)", ARCHIVE_KEY, archive, archive_lines),
    ):
        engine.upload(key, path)
        size = path.stat().st_size / 1_000_000
        bucket = engine.outputs["InputBucketName"]
        say(f"uploaded s3://{bucket}/{key}  ({lines:,} lines, {size:.1f} MB)")
        runs.append(_Followed(label=label, key=key))
    for run in runs:
        (run.arn,) = engine.executions_for_upload(run.key)
    say()
    return runs


def _follow(
    engine: LocalEngine, runs: list[_Followed], began: float, timeout: float, say: Any
) -> bool:
    sfn = engine.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        for run in runs:
            if run.status != "RUNNING":
                continue
            _observe(sfn, run)
            stamp = f"[{time.monotonic() - began:5.1f} s]"
            note = f"{run.state}" + (
                f"  units {run.counts[0]} done, {run.counts[1]} failed of {run.counts[2]}"
                if run.counts[2]
                else ""
            )
            if note not in run.seen:
                run.seen.add(note)
                say(f"{stamp} {run.label:<22} {note}")
            if run.status != "RUNNING":
                say(f"{stamp} {run.label:<22} {run.status}")
        if all(run.status != "RUNNING" for run in runs):
            return all(run.status == "SUCCEEDED" for run in runs)
        if time.monotonic() > deadline:
            say(f"gave up after {timeout:.0f} s; stopping the runs")
            return False
        time.sleep(0.2)


def _observe(sfn: Any, run: _Followed) -> None:
    described = sfn.describe_execution(executionArn=run.arn)
    run.status = str(described["status"])
    run.state = ""
    for event in reversed(sfn.get_execution_history(executionArn=run.arn)["events"]):
        if event["type"] == "MapRunStarted" and not run.map_run_arn:
            run.map_run_arn = event["mapRunStartedEventDetails"]["mapRunArn"]
        if not run.state and event["type"].endswith("StateEntered"):
            run.state = str(event["stateEnteredEventDetails"]["name"])
        if event["type"] == "TaskSucceeded" and not run.run_id:
            output = event["taskSucceededEventDetails"].get("output", "")
            if '"run_id"' in output:
                run.run_id = str(json.loads(output).get("Payload", {}).get("run_id", ""))
    if run.map_run_arn:
        counts = sfn.describe_map_run(mapRunArn=run.map_run_arn)["itemCounts"]
        run.counts = (counts["succeeded"], counts["failed"], counts["total"])
    else:
        run.state = run.state or "Plan"


def _summarize(engine: LocalEngine, run: _Followed, say: Any) -> None:
    record = engine.ledger().get_run(run.run_id) if run.run_id else None
    if record is None:
        say(f"{run.label}: {run.status} (no run in the ledger)")
        return
    say(f"{run.label}: run {run.run_id}  {record.get('status', run.status)}")
    fields = (
        ("items", f"{record.get('succeeded', 0)} succeeded, {record.get('failed', 0)} failed"),
        ("routes", _counts(record.get("item_routes"))),
        ("records", record.get("records")),
        ("rejects", record.get("rejects")),
        ("bytes in/out", f"{record.get('bytes_in', '?')} / {record.get('bytes_out', '?')}"),
    )
    for name, value in fields:
        if value is not None:
            say(f"    {name:<13} {value}")
    bucket = engine.outputs["OutputBucketName"]
    summary_key = record.get("summary_key")
    if summary_key:
        prefix = str(summary_key).rsplit("/", 1)[0] + "/"
        say(f"    outputs       s3://{bucket}/{prefix}")
        listed = engine.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
        for entry in listed.get("Contents", [])[:6]:
            say(f"      {entry['Key'][len(prefix) :]:<32} {entry['Size']:>12,} bytes")
    if record.get("cause"):
        say(f"    cause         {record['cause']}")
    for child in engine.map_run_children(run.arn):
        if child.status != "SUCCEEDED":
            say(f"    unit {child.index}        {child.status} {child.error}: {child.cause}")


def _counts(value: Any) -> str | None:
    """``lambda: 3, ecs: 1`` for a mapping of counts (the ledger's numbers are Decimals)."""
    if not isinstance(value, dict):
        return None if value is None else str(value)
    return ", ".join(f"{name}: {_count(count)}" for name, count in sorted(value.items()))


def _count(value: Any) -> str:
    """A count, or a mapping of counts by outcome (``items by route``: ``ok 3, failed 1``)."""
    if isinstance(value, dict):
        return " ".join(f"{name} {int(count)}" for name, count in sorted(value.items()))
    return str(int(value))
