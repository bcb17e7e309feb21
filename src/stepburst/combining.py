"""A job's combine step: once, after every item, over the manifest of the items' outputs.

``PrepareCombine`` tallies the items as Finalize will. Past the job's tolerated failures the
step is skipped, and the run record says so; otherwise it writes the manifest (JSON lines, one
item a line: its index, name, status, output folder and key, result and figures) to the work
bucket and names the route: Lambda, or an ECS task for a job whose work runs on containers.
The step's own outcome (status, cause, result) goes on the run record, where Finalize reads
it: a combine that fails fails the run with its cause, and leaves the items as they were.

``combine`` has the shape of ``run``: a function or a command. A new way to run (such as
steps) reaches ``combine`` through the model; :meth:`Combiner._execute` is where it is taught
to run it, and until then a job that uses one is refused with the reason.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from stepburst import storage
from stepburst.errors import StepburstError
from stepburst.job_credentials import job_role_for
from stepburst.jobs import Job, JobCatalog
from stepburst.layout import combine_manifest_key, result_key
from stepburst.ledger import Ledger, now_iso
from stepburst.manifest_stream import unit_compute
from stepburst.observability import logger
from stepburst.records import import_function
from stepburst.settings import Settings
from stepburst.statuses import CombineStatus, RunStatus
from stepburst.steps import item_result, run_command
from stepburst.tally import RunTally, tally_run

CombineRoute = Literal["lambda", "ecs"]
# What an item contributes to the manifest besides its identity.
MANIFEST_FIELDS = (
    "status",
    "route",
    "output_prefix",
    "output_key",
    "rejects_key",
    "result",
    "records",
    "rejects",
    "bytes_out",
    "error",
)
_CAUSE_LIMIT = 4000

CombineFunction = Callable[[str, Mapping[str, str]], Mapping[str, Any] | None]
# Reads a run's item digests the way Finalize does: (run id, redrives) -> digests.
DigestReader = Callable[[str, int], list[dict[str, Any]]]


class CombineError(StepburstError):
    """The combine step cannot run as the job declares it."""


def combine_route(job: Job) -> CombineRoute | None:
    """Where a job's combine step runs; None if it has none."""
    if job.combine is None:
        return None
    if job.combine.platform is not None:
        return job.combine.platform
    # A Batch job has no ECS task definition (its size may be one only EC2 has): its combine
    # step runs on Lambda unless the job says ecs and sizes for Fargate.
    return "ecs" if job.compute.platform == "ecs" else "lambda"


@dataclass(frozen=True, slots=True)
class CombineDecision:
    action: Literal["skip", "lambda", "ecs"]
    run_id: str
    manifest: dict[str, str] | None = None
    ecs: dict[str, Any] | None = None
    reason: str | None = None

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"action": self.action, "run_id": self.run_id}
        for name in ("manifest", "ecs", "reason"):
            value = getattr(self, name)
            if value is not None:
                state[name] = value
        return state


class Combiner:
    def __init__(
        self,
        settings: Settings,
        catalog: JobCatalog,
        ledger: Ledger,
        digests: DigestReader,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.ledger = ledger
        self.digests = digests

    # -- PrepareCombine ---------------------------------------------------------------------

    def prepare(self, plan: Mapping[str, Any]) -> CombineDecision:
        run_id = str(plan["run_id"])
        job = self.catalog.get(str(plan["job"]))
        route = combine_route(job)
        if route is None:
            raise CombineError(f"job {job.name!r} has no combine step")
        run = self.ledger.get_run(run_id) or {}
        tally = self.tally(job, run_id, run, plan)
        if tally.status != RunStatus.SUCCEEDED:
            reason = f"combine skipped: {tally.cause}"
            self._record(run_id, CombineStatus.SKIPPED, cause=reason)
            logger.info("combine skipped", extra={"run_id": run_id, "failed": tally.failed})
            return CombineDecision(action="skip", run_id=run_id, reason=reason)
        key = combine_manifest_key(run_id)
        count = self._write_manifest(run_id, key)
        self.ledger.update_run(
            run_id,
            {
                "combine_status": CombineStatus.RUNNING,
                "combine_route": route,
                "combine_manifest_key": key,
                "combine_started_at": now_iso(),
                "combine_cause": "",
            },
        )
        logger.info("combine planned", extra={"run_id": run_id, "route": route, "items": count})
        return CombineDecision(
            action=route,
            run_id=run_id,
            manifest={"bucket": self.settings.work_bucket, "key": key},
            ecs=unit_compute(job, self.settings.stack_name)[0] if route == "ecs" else None,
        )

    def tally(
        self, job: Job, run_id: str, run: Mapping[str, Any], plan: Mapping[str, Any]
    ) -> RunTally:
        return tally_run(
            self.digests(run_id, int(run.get("redrives") or 0)),
            planned=int(run.get("planned_items") or plan.get("items", 0)),
            tolerated_failure_percent=job.tolerated_failure_percent,
        )

    def _write_manifest(self, run_id: str, key: str) -> int:
        count = 0
        with storage.MultipartWriter(self.settings.work_bucket, key) as writer:
            for line in manifest_lines(self.ledger.iter_items(run_id)):
                writer.write(line)
                count += 1
        return count

    # -- Combine ----------------------------------------------------------------------------

    def run(self, run_id: str, *, function_arn: str | None = None) -> CombineStatus:
        """Run the job's combine step and record its outcome; the status it ended with.
        On Lambda, ``function_arn`` (the invoked function's) places the job's role its command
        runs with.

        A failure of the job's own code is recorded, not raised: the run's verdict is
        Finalize's, from the ledger.
        """
        run = self.ledger.get_run(run_id)
        if run is None:
            raise CombineError(f"no run {run_id!r} in the ledger")
        job = self.catalog.get(str(run["job"]))
        prefix = str(run["output_prefix"])
        params = {str(k): str(v) for k, v in (run.get("params") or {}).items()}
        variables = {
            **params,
            "RUN_ID": run_id,
            "JOB": job.name,
            "OUTPUT_BUCKET": self.settings.output_bucket,
            "OUTPUT_PREFIX": prefix,
            "COMBINE_MANIFEST_BUCKET": self.settings.work_bucket,
            "COMBINE_MANIFEST": str(
                run.get("combine_manifest_key") or combine_manifest_key(run_id)
            ),
        }
        try:
            job_role = job_role_for(self.settings.stack_name, job.name, function_arn)
            result = self._execute(job, variables, job_role)
        except Exception as exc:  # the job's own code failed: recorded with its cause
            logger.exception("combine failed", extra={"run_id": run_id})
            self._record(
                run_id,
                CombineStatus.FAILED,
                cause=f"{type(exc).__name__}: {exc}"[:_CAUSE_LIMIT],
                error=type(exc).__name__,
            )
            return CombineStatus.FAILED
        if result is not None:
            storage.put_json(self.settings.output_bucket, result_key(prefix), result)
        self._record(run_id, CombineStatus.SUCCEEDED, result=result)
        logger.info("combine succeeded", extra={"run_id": run_id})
        return CombineStatus.SUCCEEDED

    def _execute(
        self, job: Job, variables: dict[str, str], job_role: str | None
    ) -> dict[str, Any] | None:
        spec = job.combine
        if spec is None:
            raise CombineError(f"job {job.name!r} has no combine step")
        if spec.function is not None:
            combine: CombineFunction = import_function(spec.function)
            return item_result(spec.function, combine(variables["COMBINE_MANIFEST"], variables))
        if spec.command is not None:
            with tempfile.TemporaryDirectory(prefix="stepburst-combine-") as folder:
                result_file = Path(folder) / "result.json"
                run_command(
                    spec.command,
                    {**variables, "COMBINE_RESULT": str(result_file)},
                    jobs_dir=self.settings.jobs_dir,
                    job_role_arn=job_role,
                )
                if not result_file.exists():
                    return None
                return item_result(spec.command, _read_result(result_file))
        raise CombineError(
            f"job {job.name!r}: combine can run a function or a command, not {spec!r}"
        )

    def _record(
        self,
        run_id: str,
        status: CombineStatus,
        *,
        cause: str | None = None,
        error: str | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> None:
        self.ledger.update_run(
            run_id,
            {
                "combine_status": status,
                "combine_finished_at": now_iso(),
                "combine_cause": cause,
                "combine_error": error,
                "combine_result": dict(result) if result is not None else None,
            },
        )


def record_unreported(
    ledger: Ledger, run_id: str, run: Mapping[str, Any], error: Mapping[str, Any] | None
) -> tuple[str, str]:
    """Finalize's view of a combine step that ended without recording its outcome (its
    Lambda timed out, its container crashed): FAILED, with the state machine's error."""
    error = error or {}
    name = str(error.get("Error") or "Stepburst.CombineUnreported")
    cause = str(error.get("Cause") or "the combine step ended without recording an outcome")
    text = f"{name}: {cause}"[:_CAUSE_LIMIT]
    ledger.update_run(
        run_id,
        {
            "combine_status": CombineStatus.FAILED,
            "combine_finished_at": now_iso(),
            "combine_cause": text,
            "combine_error": name,
        },
    )
    return CombineStatus.FAILED, text


def manifest_lines(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """One JSON line per item record, in item order."""
    for record in records:
        line: dict[str, Any] = {"item": int(record["item"]), "name": record.get("value")}
        line.update(
            (name, record[name]) for name in MANIFEST_FIELDS if record.get(name) is not None
        )
        yield orjson.dumps(line, option=orjson.OPT_NON_STR_KEYS) + b"\n"


def read_manifest(bucket: str, key: str) -> Iterator[dict[str, Any]]:
    """The combine manifest's items, for a combine function: ``read_manifest(params[
    "COMBINE_MANIFEST_BUCKET"], manifest_key)``."""
    for line in storage.iter_lines(bucket, key):
        if line.strip():
            item: dict[str, Any] = orjson.loads(line)
            yield item


def _read_result(path: Path) -> object:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise CombineError(f"the combine command's result file is not JSON: {exc}") from exc
