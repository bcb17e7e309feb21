"""What the CLI does, against a deployed stack or the local engine: typed and testable.

Everything reads the ledger for the truth about runs and items; Step Functions is asked only
for what the ledger cannot know (an execution stopped before Finalize could record it).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from stepburst import costs, firing, storage
from stepburst.adapters import batch, ecs, stepfunctions, sts
from stepburst.errors import (
    ExecutionAlreadyExistsError,
    ExecutionNotFoundError,
    InvalidInputError,
    StepburstError,
)
from stepburst.item_cancels import CancelledItem, ItemCanceller
from stepburst.jobs import Job, JobCatalog
from stepburst.layout import ecs_started_by, is_batch_job_of_run, job_own_queue, upload_identity
from stepburst.ledger import Ledger, now_iso
from stepburst.manifest_stream import ManifestSummary
from stepburst.planning import Planner, Preview, run_id_for, schedule_run_id
from stepburst.stack import Stack
from stepburst.statuses import TERMINAL_RUN_STATUSES, ExecutionStatus, ItemStatus, RunStatus
from stepburst.triggers import ManualStart

# An execution input must stay under 256 KiB; longer item lists travel as a list file in S3.
INLINE_ITEMS_LIMIT = 128 * 1024
UPLOADED_LISTS_PREFIX = "_stepburst/item-lists/"
DOWNLOAD_THREADS = 8
# How long a start waits for Plan to record its run, so the run id it prints can be looked up
# straight away; Plan writes the record within a second or two of the execution starting.
RUN_RECORD_WAIT_SECONDS = 60.0


class RunNotFoundError(StepburstError):
    """No run with that id in the ledger."""


@dataclass(frozen=True, slots=True)
class Started:
    run_id: str
    execution_arn: str


@dataclass(frozen=True, slots=True)
class Uploaded:
    bucket: str
    key: str
    version_id: str | None
    job: str | None
    run_id: str | None


# What a run still RUNNING in the ledger is when its execution ended before Finalize.
_ENDED_EARLY: dict[str, RunStatus] = {
    ExecutionStatus.FAILED: RunStatus.FAILED,
    ExecutionStatus.TIMED_OUT: RunStatus.FAILED,
    ExecutionStatus.ABORTED: RunStatus.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class RunProgress:
    """A run as the ledger has it, its items counted, and its execution's status."""

    run: dict[str, Any]
    by_status: dict[str, int]
    by_route: dict[str, dict[str, int]]
    execution_status: str | None

    @property
    def planned(self) -> int:
        return int(self.run.get("planned_items") or 0)

    @property
    def status(self) -> str:
        recorded = str(self.run.get("status", "UNKNOWN"))
        # An execution that ended without reaching Finalize leaves the run RUNNING.
        if recorded == RunStatus.RUNNING and self.execution_status in _ENDED_EARLY:
            return _ENDED_EARLY[self.execution_status]
        return recorded

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "status": self.status,
            "items": self.by_status,
            "routes": self.by_route,
            "execution_status": self.execution_status,
        }


def execution_name(prefix: str) -> str:
    """A unique execution name within Step Functions' 80 characters."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{prefix[:50]}-{stamp}-{uuid.uuid4().hex[:8]}"


def read_text_file(path: str, field: str) -> str:
    """The text of a file named on the command line by ``field`` (e.g. ``--input``).

    A file that cannot be read is bad input: the error names the field, the file and why.
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInputError(field, f"{path} is not UTF-8 text") from error
    except OSError as error:
        raise InvalidInputError(field, f"cannot read {path}: {error.strerror}") from error


def read_items_file(path: str, stdin: Iterable[str], field: str = "--items-file") -> list[str]:
    """Work-item names, one a line, from a file or ``-`` (stdin); ``#`` starts a comment."""
    if path == "-":
        try:
            lines = list(stdin)
        except UnicodeDecodeError as error:
            raise InvalidInputError(field, "standard input is not UTF-8 text") from error
    else:
        lines = read_text_file(path, field).splitlines()
    names = [line.split("#", 1)[0].strip() for line in lines]
    return [name for name in dict.fromkeys(names) if name]


class Operations:
    def __init__(self, stack: Stack, jobs_dir: Path) -> None:
        self.stack = stack
        self.settings = stack.settings(jobs_dir)
        self._catalog: JobCatalog | None = None
        self._catalog_loader: Callable[[], JobCatalog] | None = None
        self.ledger = Ledger(self.settings.ledger_table, self.settings.retention_days)

    @property
    def catalog(self) -> JobCatalog:
        if self._catalog is None:
            if self._catalog_loader is not None:
                self._catalog = self._catalog_loader()
            else:
                self._catalog = JobCatalog.from_directory(self.settings.jobs_dir)
        return self._catalog

    def use_catalog(self, loader: Callable[[], JobCatalog]) -> None:
        """Take the jobs from ``loader`` (e.g. the stack's published catalog), on first use."""
        self._catalog, self._catalog_loader = None, loader

    @property
    def planner(self) -> Planner:
        return Planner(self.settings, self.catalog, self.ledger)

    # -- starting ---------------------------------------------------------------------------

    def upload(self, path: Path, prefix: str | None, *, wait_seconds: float = 0) -> Uploaded:
        if prefix is None:
            prefix = self.default_prefix(path.name)
        key = prefix + path.name if prefix.endswith("/") or not prefix else prefix
        version = storage.put_file(self.settings.input_bucket, key, path)
        job = self.catalog.for_upload(key)
        run_id = self._await_claim(key, version, wait_seconds) if job and wait_seconds else None
        return Uploaded(self.settings.input_bucket, key, version, job.name if job else None, run_id)

    def default_prefix(self, name: str) -> str:
        """The upload prefix of the one job whose trigger takes a file of this name."""
        prefixes = sorted(
            {
                trigger.prefix
                for job in self.catalog
                for trigger in job.triggers.s3
                if name.endswith(trigger.suffix)
            }
        )
        if len(prefixes) != 1:
            choices = ", ".join(prefixes) or "no job's upload trigger takes this file"
            raise InvalidInputError("--to", f"give the prefix to upload under ({choices})")
        return prefixes[0]

    def _await_claim(self, key: str, version: str | None, wait_seconds: float) -> str | None:
        identity = upload_identity(self.settings.input_bucket, key, version_id=version)
        if identity is None:
            # Unversioned: only the upload's event carries the sequencer that names it.
            return None
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            claim = self.ledger.get_trigger(identity)
            if claim is not None:
                return str(claim["run_id"]) if claim.get("run_id") else None
            time.sleep(0.25)
        return None

    def prepare(self, start: ManualStart) -> ManualStart:
        """Move a long item list to S3 so the execution input stays small."""
        items = start.input.get("items")
        if not isinstance(items, list) or len(json.dumps(items)) <= INLINE_ITEMS_LIMIT:
            return start
        body = "\n".join(str(item) for item in items).encode("utf-8")
        key = UPLOADED_LISTS_PREFIX + hashlib.sha256(body).hexdigest() + ".txt"
        storage.put_bytes(self.settings.input_bucket, key, body, "text/plain")
        rest = {name: value for name, value in start.input.items() if name != "items"}
        return start.model_copy(update={"input": {**rest, "items_key": key}})

    def preview(self, start: ManualStart) -> Preview:
        return self.planner.preview(start)

    def start(self, start: ManualStart, previewed: Preview) -> Started:
        """Start a run whose input ``preview`` has validated (a bad input starts nothing)."""
        if previewed.job.name != start.job:
            raise InvalidInputError("job", f"the preview is of {previewed.job.name!r}")
        document = {"job": start.job, "input": start.input, "params": start.params}
        started = self._start_execution(document, execution_name(start.job), start.job)
        self.await_run_record(started)
        return started

    def redrive(self, run_id: str) -> Started:
        run = self.run(run_id)
        if run.get("status") not in TERMINAL_RUN_STATUSES:
            raise InvalidInputError("run", f"run {run_id!r} is still {run.get('status')}")
        if run.get("status") == RunStatus.SUCCEEDED and not (
            int(run.get("failed") or 0) or int(run.get("cancelled") or 0)
        ):
            raise InvalidInputError(
                "run", f"every item of run {run_id!r} succeeded: nothing to redrive"
            )
        redrive = int(run.get("redrives", 0)) + 1
        name = f"redrive-{hashlib.sha256(run_id.encode()).hexdigest()[:20]}-{redrive}"
        started = self._start_execution({"redrive": run_id}, name, None)
        return Started(run_id=run_id, execution_arn=started.execution_arn)

    def fire_schedule(
        self, job_name: str, day: date, at: clock_time | None = None
    ) -> tuple[Started, datetime]:
        """Start the run ``job_name``'s schedule starts for its fire time on ``day``; that
        run and the scheduled time (no execution ARN when that time was fired before)."""
        job = self.catalog.get(job_name)
        fired = firing.firing(job, firing.scheduled_time_for(job, day, at))
        run_id = schedule_run_id(job, fired.scheduled_time)
        try:
            started = self._start_execution(fired.document, fired.execution_name, None)
        except ExecutionAlreadyExistsError:
            # Fired before for this time: the name is taken, and so is the run.
            return Started(run_id=run_id, execution_arn=""), fired.scheduled_time
        started = Started(run_id=run_id, execution_arn=started.execution_arn)
        self.await_run_record(started)
        return started, fired.scheduled_time

    def await_run_record(self, started: Started, *, wait_seconds: float | None = None) -> bool:
        """Whether ``started``'s run is in the ledger, waiting until Plan records it.

        Plan (or RecordPlanFailure, when planning fails) writes the run record; until then
        ``status`` and ``items`` cannot find the run. The wait ends early once the execution
        has ended, whatever it left in the ledger.
        """
        if wait_seconds is None:
            wait_seconds = RUN_RECORD_WAIT_SECONDS
        deadline = time.monotonic() + wait_seconds
        while True:
            if self.ledger.get_run(started.run_id) is not None:
                return True
            if time.monotonic() >= deadline:
                return False
            try:
                execution_status = stepfunctions.execution_status(started.execution_arn)
            except ExecutionNotFoundError:
                return False
            if execution_status != ExecutionStatus.RUNNING:
                return self.ledger.get_run(started.run_id) is not None
            time.sleep(0.2)

    def _start_execution(self, document: dict[str, Any], name: str, job: str | None) -> Started:
        execution = stepfunctions.start_execution(
            self.stack.output("StateMachineArn"), name, document
        )
        arn = execution.arn
        if job is None:
            return Started(run_id="", execution_arn=arn)
        # The Plan state names the run from the execution, exactly like this.
        run_id = run_id_for(self.catalog.get(job), execution.started_at, arn)
        return Started(run_id=run_id, execution_arn=arn)

    # -- looking ----------------------------------------------------------------------------

    def run(self, run_id: str) -> dict[str, Any]:
        run = self.ledger.get_run(run_id)
        if run is None:
            raise RunNotFoundError(f"no run {run_id!r} in the ledger")
        return run

    def runs(self, job: str | None, limit: int) -> list[dict[str, Any]]:
        names = [job] if job else [known.name for known in self.catalog]
        found = [run for name in names for run in self.ledger.list_runs(name, limit=limit)]
        found.sort(key=lambda run: str(run.get("started_at", "")), reverse=True)
        return found[:limit]

    def items(self, run_id: str, *, failed_only: bool = False) -> list[dict[str, Any]]:
        self.run(run_id)
        records = self.ledger.iter_items(run_id)
        return [r for r in records if not failed_only or r.get("status") != ItemStatus.SUCCEEDED]

    def status(self, run_id: str) -> RunProgress:
        run = self.run(run_id)
        counted = _finalized_counts(run)
        if counted is not None:
            # Finalize counted every item into the run record: a 100,000-item run's status
            # needs no read of its items.
            by_status_counted, by_route_counted = counted
            return RunProgress(
                run=run,
                by_status=by_status_counted,
                by_route=by_route_counted,
                execution_status=self._execution_status(run),
            )
        by_status: Counter[str] = Counter()
        by_route: dict[str, Counter[str]] = {}
        for item in self.ledger.iter_items(run_id):
            status = str(item.get("status"))
            by_status[status] += 1
            by_route.setdefault(str(item.get("route")), Counter())[status] += 1
        return RunProgress(
            run=run,
            by_status=dict(by_status),
            by_route={route: dict(counts) for route, counts in by_route.items()},
            execution_status=self._execution_status(run),
        )

    def watch(self, run_id: str, *, interval: float = 1.0) -> Iterator[RunProgress]:
        """Statuses until the run ends (the caller stops it early with Ctrl-C)."""
        while True:
            status = self.status(run_id)
            yield status
            if status.status in TERMINAL_RUN_STATUSES:
                return
            time.sleep(interval)

    def _execution_status(self, run: dict[str, Any]) -> str | None:
        arn = run.get("execution_id")
        if not arn:
            return None
        try:
            return stepfunctions.execution_status(str(arn))
        except ExecutionNotFoundError:
            return None

    # -- steering ---------------------------------------------------------------------------

    def cancel(self, run_id: str) -> dict[str, int]:
        """Stop the execution and every container it started; the run is CANCELLED."""
        run = self.run(run_id)
        execution_status = self._execution_status(run)
        if (
            run.get("status") in TERMINAL_RUN_STATUSES
            and execution_status != ExecutionStatus.RUNNING
        ):
            raise InvalidInputError(
                "run", f"run {run_id!r} already ended {run.get('status')}: nothing to cancel"
            )
        stopped = {"executions": 0, "ecs_tasks": 0, "batch_jobs": 0}
        if execution_status == ExecutionStatus.RUNNING:
            stepfunctions.stop_execution(
                str(run["execution_id"]), error="Stepburst.Cancelled", cause="stepburst cancel"
            )
            stopped["executions"] = 1
        # Step Functions stops .sync tasks of a stopped execution itself; stopping what the run
        # started here as well closes the window while it does.
        stopped["ecs_tasks"] = self._stop_ecs_tasks(run_id)
        stopped["batch_jobs"] = self._terminate_batch_jobs(run_id, str(run.get("job") or ""))
        running = [
            item
            for item in self.ledger.iter_items(run_id)
            if item.get("status") in (ItemStatus.RUNNING, ItemStatus.RETRYING)
        ]
        self.ledger.put_items(
            run_id,
            (
                {
                    **{k: v for k, v in item.items() if k not in ("pk", "run_id", "expires_at")},
                    "status": ItemStatus.CANCELLED,
                    "finished_at": now_iso(),
                }
                for item in running
            ),
        )
        self.ledger.update_run(
            run_id, {"status": RunStatus.CANCELLED, "finished_at": now_iso(), "cause": "cancelled"}
        )
        return stopped

    def cancel_items(self, run_id: str, names: list[str]) -> list[CancelledItem]:
        """Cancel some items of a running run; the others go on (see stepburst.item_cancels)."""
        run = self.run(run_id)
        if run.get("status") in TERMINAL_RUN_STATUSES:
            raise InvalidInputError(
                "run", f"run {run_id!r} already ended {run.get('status')}: nothing to cancel"
            )
        canceller = ItemCanceller(
            self.ledger, self.settings.work_bucket, self.stack.outputs, sts.caller_arn
        )
        return canceller.cancel(run, names)

    def _stop_ecs_tasks(self, run_id: str) -> int:
        cluster = self.stack.outputs.get("ClusterArn")
        if not cluster:
            return 0
        arns = ecs.running_tasks(cluster, started_by=ecs_started_by(run_id))
        for arn in arns:
            ecs.stop_task(cluster, arn, reason=f"stepburst cancel {run_id}")
        return len(arns)

    def _terminate_batch_jobs(self, run_id: str, job: str) -> int:
        # Each job's capacity and architecture has its queue; a stack from before lists one.
        listed = self.stack.outputs.get("WorkerJobQueueArns") or self.stack.outputs.get(
            "WorkerJobQueueArn"
        )
        queues = [queue for queue in (listed or "").split(",") if queue]
        # A job with its own machines has its own queue (stepburst.job_machines), if it exists.
        own = job_own_queue(self.settings.stack_name, job) if job else ""
        if own and batch.job_queue(own) is not None:
            queues.append(own)
        job_ids = [
            job_id
            for queue in queues
            for job_id in batch.unfinished_jobs(
                queue, named=lambda name: is_batch_job_of_run(name, run_id)
            )
        ]
        for job_id in job_ids:
            batch.terminate_job(job_id, reason="stepburst cancel")
        return len(job_ids)

    # -- results ----------------------------------------------------------------------------

    def download(self, run_id: str, directory: Path) -> tuple[int, int]:
        prefix = str(self.run(run_id)["output_prefix"])
        bucket = self.settings.output_bucket
        listed = list(storage.iter_objects(bucket, prefix))

        def fetch(entry: storage.ListedObject) -> int:
            target = directory / entry.key[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            storage.download_file(storage.S3Object(bucket, entry.key), target)
            return entry.size

        with ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS) as pool:
            total = sum(pool.map(fetch, listed))
        return len(listed), total

    def cost(self, run_id: str) -> costs.Cost:
        run = self.run(run_id)
        job = self.catalog.get(str(run["job"]))
        return job_cost(job, costs.usage_from_ledger(self.ledger.iter_items(run_id)))


def _finalized_counts(
    run: dict[str, Any],
) -> tuple[dict[str, int], dict[str, dict[str, int]]] | None:
    """Items by status and by route as Finalize recorded them, if it finished the run with
    every planned item recorded (the counts then equal a read of every item)."""
    routes = run.get("item_routes")
    if run.get("status") not in (RunStatus.SUCCEEDED, RunStatus.FAILED) or not isinstance(
        routes, dict
    ):
        return None
    by_route = {
        str(route): {str(status): int(count) for status, count in counts.items()}
        for route, counts in routes.items()
        if isinstance(counts, dict)
    }
    by_status: Counter[str] = Counter()
    for counts in by_route.values():
        by_status.update(counts)
    if sum(by_status.values()) != int(run.get("planned_items") or 0):
        return None  # items never recorded, or a redrive's counts: read the items
    return dict(by_status), by_route


def current_region() -> str | None:
    """The region the CLI's clients use (boto3's variables), whose prices apply."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def job_cost(job: Job, usage: Iterable[costs.Usage], *, region: str | None = None) -> costs.Cost:
    """What ``usage`` costs at the job's sizes and container architecture, in ``region``
    (the clients' region when not given)."""
    return costs.estimate(
        usage,
        lambda_memory_mb=job.compute.lambda_memory_mb,
        cpu_units=job.compute.cpu,
        memory_mb=job.compute.memory_mb,
        spot=job.compute.spot,
        architecture=job.compute.architecture,
        region=region or current_region(),
    )


def draft_cost(draft: Preview, *, region: str | None = None) -> costs.Cost:
    """A preview's cost from its per-route unit counts and seconds (its units are not kept)."""
    return job_cost(draft.job, _route_usage(draft.summary), region=region)


def _route_usage(summary: ManifestSummary) -> Iterator[costs.Usage]:
    # The route's seconds shared evenly by its units: what a container's one-minute minimum
    # and each unit's start are billed on.
    for route, units in summary.unit_routes.items():
        share = summary.unit_seconds.get(route, 0.0) / max(units, 1)
        for _ in range(units):
            yield costs.Usage(route, share)
