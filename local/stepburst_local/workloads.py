"""``stepburst demo NAME``: one seed system's workload end to end on the local engine.

Each demo starts the engine on the project's template, generates its workload's data (nothing
here reaches the internet), starts the job as its users would, follows the run to its end and
prints what it produced, where, and how to look at it. ``stepburst demo`` alone runs the JSONL
demo (``demo.py``).
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from stepburst_local.engine import LocalEngine

EXIT_OK = 0
EXIT_FAILED = 1
RUN_TIMEOUT_SECONDS = 300.0

Say = Callable[[str], None]


class _Discard(io.TextIOBase):
    """Where the functions' own prints go during a demo (they are in the engine's logs)."""

    def write(self, text: str) -> int:
        return len(text)


@dataclass(frozen=True)
class Workload:
    name: str
    seed_system: str
    job: str
    run: Callable[[LocalEngine, Path, Say], bool]


def _finished(engine: LocalEngine, execution_arn: str) -> tuple[str, dict[str, Any] | None]:
    described = engine.wait_for_execution(execution_arn, timeout=RUN_TIMEOUT_SECONDS)
    link = engine.ledger().execution_link(execution_arn)
    if link is None:
        return str(described["status"]), None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run = engine.ledger().get_run(str(link["run_id"]))
        if run is not None and run.get("status") != "RUNNING":
            return str(described["status"]), run
        time.sleep(0.1)
    return str(described["status"]), engine.ledger().get_run(str(link["run_id"]))


# -- ZTF daily alerts -----------------------------------------------------------------------

ZTF_DAY = "20260308"
ZTF_MEMBERS = 600
ZTF_LARGE_MEMBER_BYTES = 12 * 1024 * 1024


def _ztf(engine: LocalEngine, scratch: Path, say: Say) -> bool:
    import fastavro

    from stepburst_local.http_files import FileServer
    from stepburst_local.ztf_alerts import load_schema, write_alert_tarball

    jobs_dir = engine.resolved_jobs_dir
    tarball = scratch / f"ztf_public_{ZTF_DAY}.tar.gz"
    members = write_alert_tarball(
        tarball, jobs_dir, ZTF_DAY, ZTF_MEMBERS, large_member_bytes=ZTF_LARGE_MEMBER_BYTES
    )
    size = tarball.stat().st_size / 1_000_000
    with FileServer(scratch) as server:
        url = server.url + "/ztf_public_{date}.tar.gz"
        say(f"serving a generated night: {len(members):,} alert packets, {size:.1f} MB, at {url}")
        # As on the real site, the connection may drop; the download resumes.
        server.drop_next_response_after(tarball.stat().st_size // 2)
        say(
            f"start ztf-alerts-daily --date {ZTF_DAY} --param URL_TEMPLATE=…  "
            "(daily at 06:00 Los Angeles time when deployed)"
        )
        arn = engine.start_execution(
            {"job": "ztf-alerts-daily", "input": {"date": ZTF_DAY}, "params": {"URL_TEMPLATE": url}}
        )
        status, run = _finished(engine, arn)
    if run is None:
        say(f"the execution ended {status} without a run")
        return False
    say(f"run {run['run_id']}: {run.get('status')}")
    items = list(engine.ledger().iter_items(str(run["run_id"])))
    result = next((item.get("result") for item in items if item.get("result")), None)
    if run.get("status") != "SUCCEEDED" or not result:
        say(f"  cause: {run.get('cause') or [item.get('cause') for item in items]}")
        return False
    bucket = engine.outputs["OutputBucketName"]
    say(
        f"  unpacked {result['members']:,} members, {result['bytes']:,} bytes "
        f"(download resumed {result.get('resumed', 0)} time(s))"
    )
    say(f"  alerts at s3://{bucket}/{result['prefix']}")
    first = sorted(members)[0]
    body = (
        engine.client("s3")
        .get_object(Bucket=bucket, Key=f"{result['prefix']}{first}")["Body"]
        .read()
    )
    (alert,) = list(fastavro.reader(io.BytesIO(body), reader_schema=load_schema(jobs_dir)))
    assert isinstance(alert, dict)
    candidate = alert["candidate"]
    say(
        f"  {first}: {alert['objectId']} ra {candidate['ra']:.5f} dec {candidate['dec']:.5f} "
        f"magpsf {candidate['magpsf']:.2f} with {len(alert['prv_candidates'] or [])} earlier "
        "detection(s)"
    )
    say('  read one yourself: python -c "import fastavro,sys; print(next(fastavro.reader(')
    say("    open(sys.argv[1],'rb'))))\" ALERT.avro")
    say(
        "  the Glue table stepburst.ztf_alerts has the night's partition; in Athena:\n"
        "    SELECT objectId, candidate.ra, candidate.dec, candidate.magpsf\n"
        f"    FROM stepburst.ztf_alerts WHERE date = '{ZTF_DAY}' AND candidate.rb > 0.9"
    )
    partitions = engine.client("glue").get_partitions(
        DatabaseName="stepburst", TableName="ztf_alerts"
    )["Partitions"]
    say(f"  partitions registered: {', '.join(p['Values'][0] for p in partitions)}")
    return True


# -- RIOS raster processing ------------------------------------------------------------------

RIOS_KEY = "rasters/field-30m.tif"
RIOS_BLOCK = 256


def _rios(engine: LocalEngine, scratch: Path, say: Say) -> bool:
    from stepburst_local.rasters import HEIGHT, WIDTH, write_scene

    raster = write_scene(scratch / "field-30m.tif")
    engine.client("s3").upload_file(str(raster), engine.outputs["InputBucketName"], RIOS_KEY)
    blocks = -(-HEIGHT // RIOS_BLOCK) * -(-WIDTH // RIOS_BLOCK)
    say(
        f"uploaded a generated {WIDTH}x{HEIGHT} two-band GeoTIFF (red, NIR; tiled, "
        f"{raster.stat().st_size / 1_000_000:.1f} MB) to s3://…/{RIOS_KEY}"
    )
    say(
        f'start rios-ndvi --input \'{{"key": "{RIOS_KEY}"}}\': '
        f"{blocks} blocks of {RIOS_BLOCK}x{RIOS_BLOCK} on AWS Batch, then a mosaic"
    )
    arn = engine.start_execution({"job": "rios-ndvi", "input": {"key": RIOS_KEY}, "params": {}})
    status, run = _finished(engine, arn)
    if run is None:
        say(f"the execution ended {status} without a run")
        return False
    items = list(engine.ledger().iter_items(str(run["run_id"])))
    routes = sorted({str(item.get("route")) for item in items})
    succeeded = sum(item.get("status") == "SUCCEEDED" for item in items)
    say(
        f"run {run['run_id']}: {run.get('status')}; {succeeded}/{len(items)} blocks "
        f"succeeded on {', '.join(routes)}; combine {run.get('combine_status')}"
    )
    result = run.get("combine_result")
    if run.get("status") != "SUCCEEDED" or not result:
        say(f"  cause: {run.get('cause') or run.get('combine_cause')}")
        return False
    read = sum(int((item.get("result") or {}).get("bytes_read", 0)) for item in items)
    say(
        f"  the blocks read {read / 1_000_000:.1f} MB of the raster with ranged GETs "
        "(each block its own tiles)"
    )
    bucket, key = str(result["output_bucket"]), str(result["output_key"])
    say(f"  mosaic: s3://{bucket}/{key}  (float32 GeoTIFF, NaN where NIR + Red = 0)")
    say(
        f"  shape {result['shape'][0]}x{result['shape'][1]}, NDVI min {result['ndvi_min']:.3f} "
        f"max {result['ndvi_max']:.3f} mean {result['ndvi_mean']:.3f}, "
        f"{result['nodata_pixels']} nodata pixels"
    )
    saved = Path(tempfile.gettempdir()) / "stepburst-demo-rios-ndvi.tif"
    engine.client("s3").download_file(bucket, key, str(saved))
    say(f"  a copy is at {saved}; look at it with")
    say(f"    gdalinfo -stats {saved}      (or QGIS: Layer > Add Raster Layer)")
    say(
        f"    python -c \"import tifffile; a = tifffile.imread('{saved}'); "
        'print(a.shape, a.dtype)"'
    )
    return True


# -- Cloudburst dam periods ----------------------------------------------------------------

DAM_ITEMS = "Dam001-002/Period01-03"
DAM_COMMAND_TIMEOUT_SECONDS = 120.0


def _stepburst(engine: LocalEngine, *argv: str) -> dict[str, Any]:
    """Run a ``stepburst`` command against the engine as a user would, and read its JSON."""
    import json
    import os
    import subprocess

    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "stepburst.cli",
            "--local",
            "--endpoint",
            engine.endpoint_url,
            "--jobs-dir",
            str(engine.resolved_jobs_dir),
            *argv,
            "--json",
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=DAM_COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode not in (0, 1):
        raise RuntimeError(f"stepburst {' '.join(argv)}: {completed.stderr.strip()}")
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


def _dam_periods(engine: LocalEngine, scratch: Path, say: Say) -> bool:
    import json

    from stepburst_local.dam_inputs import dam_periods, write_inputs

    items = dam_periods(range(1, 3), range(1, 4))
    inputs = scratch / "inputs"
    # The outputs outlive the demo (its scratch directory does not), to look at afterwards.
    outputs = Path(tempfile.mkdtemp(prefix="stepburst-demo-dam-periods-outputs-"))
    write_inputs(inputs, items)
    say(
        f"generated inputs for {len(items)} dam periods under {inputs} (reservoir.json, inflow.csv)"
    )
    input_bucket = engine.outputs["InputBucketName"]
    say(f"sync {inputs.name} s3://{input_bucket}/input/ --zip-each 'Dam*/Period*'")
    synced = _stepburst(
        engine, "sync", str(inputs), f"s3://{input_bucket}/input/", "--zip-each", "Dam*/Period*"
    )
    say(f"  uploaded {synced['copied']} zips, {synced['bytes']:,} bytes")
    say(f"start dam-periods --items '{DAM_ITEMS}' --param MODE_STR=full --apply")
    started = _stepburst(
        engine, "start", "dam-periods", "--items", DAM_ITEMS, "--param", "MODE_STR=full", "--apply"
    )
    status, run = _finished(engine, str(started["execution_arn"]))
    if run is None:
        say(f"the execution ended {status} without a run")
        return False
    run_id = str(run["run_id"])
    ledger_items = list(engine.ledger().iter_items(run_id))
    counts: dict[str, int] = {}
    for item in ledger_items:
        counts[str(item["status"])] = counts.get(str(item["status"]), 0) + 1
    say(f"run {run_id}: {run.get('status')} ({', '.join(f'{n} {s}' for s, n in counts.items())})")
    if run.get("status") != "SUCCEEDED":
        say(f"  cause: {run.get('cause') or [item.get('cause') for item in ledger_items]}")
        return False
    output_bucket = engine.outputs["OutputBucketName"]
    say(f"sync s3://{output_bucket}/dams/{run_id}/ {outputs} --unzip")
    fetched = _stepburst(
        engine, "sync", f"s3://{output_bucket}/dams/{run_id}/", str(outputs), "--unzip"
    )
    say(f"  downloaded {fetched['copied']} objects, unzipped {fetched['unzipped']}")
    for item in items:
        summary = json.loads((outputs / item / "out" / "summary.json").read_text("utf-8"))
        say(
            f"  {item}: {summary['steps']} hourly steps, final storage "
            f"{summary['final_storage_m3']:,.0f} m³ (lowest {summary['lowest_storage_m3']:,.0f}), "
            f"spilled {summary['spilled_m3']:,.0f} m³"
        )
    say(f"  outputs kept at {outputs}/DamNNN/PeriodNN/out/ (storage.csv, summary.json)")
    return True


# -- triage experiments on AWS Batch ---------------------------------------------------------

TRIAGE_BUCKET = "dirtyduck-triage"  # the project's bucket that jobs/triage-experiment.yaml names
TRIAGE_SECRET = "triage/postgres-password"
TRIAGE_EXPERIMENT = (
    "name: simple_test_skeleton\n"
    "data: {rows: 400, features: 4, seed: 7, test_fraction: 0.25}\n"
    "model: {learning_rate: 0.5, epochs: 200, l2: 0.001}\n"
)


def _triage(engine: LocalEngine, scratch: Path, say: Say) -> bool:
    import json
    import secrets

    s3 = engine.client("s3")
    s3.create_bucket(Bucket=TRIAGE_BUCKET)
    experiment_key = "experiments/simple_test_skeleton.yaml"
    s3.put_object(Bucket=TRIAGE_BUCKET, Key=experiment_key, Body=TRIAGE_EXPERIMENT.encode())
    say(
        f"experiment file at s3://{TRIAGE_BUCKET}/{experiment_key}  (stepburst sync experiments/ …)"
    )
    # A fresh password each demo: the job reads it at run time and never shows it.
    engine.client("secretsmanager").create_secret(
        Name=TRIAGE_SECRET, SecretString=secrets.token_urlsafe(18)
    )
    say(f"database password in Secrets Manager as {TRIAGE_SECRET} (the job's secrets)")
    params = {
        "experiment_file": f"s3://{TRIAGE_BUCKET}/{experiment_key}",
        "output_path": f"s3://{TRIAGE_BUCKET}/triage",
        "replace": "--replace",
        "save_predictions": "--save-predictions",
    }
    say(
        "start triage-experiment "
        + " ".join(f"--param {name}={value}" for name, value in params.items())
    )
    arn = engine.start_execution({"job": "triage-experiment", "input": {}, "params": params})
    status, run = _finished(engine, arn)
    if run is None:
        say(f"the execution ended {status} without a run")
        return False
    say(f"run {run['run_id']}: {run.get('status')}")
    items = list(engine.ledger().iter_items(str(run["run_id"])))
    if run.get("status") != "SUCCEEDED" or not items:
        say(f"  cause: {run.get('cause') or [item.get('cause') for item in items]}")
        return False
    (item,) = items
    say(f"  ran on {item.get('route')} (EC2, 1 vCPU, 16 GB when deployed)")
    for line in str(item.get("output_tail", "")).splitlines():
        say(f"    {line}")
    listed = s3.list_objects_v2(Bucket=TRIAGE_BUCKET, Prefix="triage/").get("Contents", [])
    metrics_keys = [entry["Key"] for entry in listed if entry["Key"].endswith("metrics.json")]
    if not metrics_keys:
        say("  no metrics.json under the output path")
        return False
    for entry in listed:
        say(f"  s3://{TRIAGE_BUCKET}/{entry['Key']}  {entry['Size']:,} bytes")
    stored = json.loads(s3.get_object(Bucket=TRIAGE_BUCKET, Key=metrics_keys[0])["Body"].read())
    say(f"  metrics: {json.dumps(stored['metrics'])}")
    return True


WORKLOADS: dict[str, Workload] = {
    workload.name: workload
    for workload in (
        Workload("ztf", "ZTF daily alerts", "ztf-alerts-daily", _ztf),
        Workload("rios", "RIOS raster processing on AWS Batch", "rios-ndvi", _rios),
        Workload("dam-periods", "Cloudburst task pipeline", "dam-periods", _dam_periods),
        Workload("triage", "triage experiments on AWS Batch", "triage-experiment", _triage),
    )
}


@contextlib.contextmanager
def _engine(project: Path) -> Iterator[LocalEngine]:
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(_Discard()),
        LocalEngine(project, time_scale=0.01, quiet=True) as engine,
    ):
        warnings.simplefilter("ignore")  # the functions' own warnings are for their logs
        yield engine


def run_workload(name: str, project: Path, *, out: TextIO | None = None) -> int:
    """Run the demo of one seed workload; 0 when its run succeeds and its outputs check out."""
    stream = out or sys.stdout

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    workload = WORKLOADS[name]
    began = time.monotonic()
    say(f"stepburst demo {name}: {workload.seed_system} as the job {workload.job}")
    with (
        tempfile.TemporaryDirectory(prefix=f"stepburst-demo-{name}-") as scratch,
        _engine(project) as engine,
    ):
        say(f"  engine up in {time.monotonic() - began:.1f} s on {engine.endpoint_url}")
        ok = workload.run(engine, Path(scratch), say)
    say(
        f"done in {time.monotonic() - began:.1f} s. The outputs lived in the in-memory S3; "
        "`stepburst local up` keeps a stack running to look around with the CLI."
    )
    return EXIT_OK if ok else EXIT_FAILED
