"""Where things are: every key, prefix and name that one part of stepburst writes and another
part (or the state machine) finds again. Each is built here and nowhere else.

    work bucket    runs/<run>/manifest.json              the plan's work units
                   runs/<run>/map-results/...            the fan-out's ResultWriter
                   runs/<run>/redrive-<n>/...            the same, for the nth redrive
                   runs/<run>/combine/manifest.jsonl     the items' outputs, for combine
                   runs/<run>/replace/before.jsonl       a replacing run's folder before it
    output bucket  <job output prefix><run>/             everything a run writes:
                       part-<item>.jsonl, rejects/part-<item>.jsonl  (per item)
                       rejects.jsonl, _SUMMARY.json                  (per run, by Finalize)
                       _RESULT.json                                  (per run, by combine)
                   or the job's output.key rendered (stepburst.outputs)
    ledger         RUN#<run>  RUN | ITEM#<item> | UNIT#<manifest>#<unit>
                   TRIGGER#<trigger identity>  TRIGGER
    triggers       <bucket>/<key>#<version id>           an upload to a versioned bucket
                   <bucket>/<key>#<sequencer>:<etag>     an upload to an unversioned one
                   schedule/<run>                        a scheduled run
    containers     ECS startedBy <run>; Batch job name <run>-unit-<unit>-attempt-<attempt>

The state machine builds three of these itself (the item's ledger key ``RUN#<run>``, the ECS
``StartedBy`` and the Batch ``JobName``); ``tests/unit/test_layout.py`` holds it to this module.
"""

from __future__ import annotations

import hashlib
import re

# -- work bucket ---------------------------------------------------------------------------

MANIFEST_NAME = "manifest.json"
MAP_RESULTS_NAME = "map-results"


def _run_folder(run_id: str, redrive: int) -> str:
    return f"runs/{run_id}/" + (f"redrive-{redrive}/" if redrive else "")


def manifest_key(run_id: str, redrive: int = 0) -> str:
    """The run's manifest; a redrive writes its own, of the items it runs again."""
    return _run_folder(run_id, redrive) + MANIFEST_NAME


def combine_manifest_key(run_id: str) -> str:
    """The JSON lines list of a run's items and their outputs, read by its combine step."""
    return f"runs/{run_id}/combine/manifest.jsonl"


def replace_snapshot_key(run_id: str) -> str:
    """What was under a replacing run's folder before it wrote (see stepburst.replacing)."""
    return f"runs/{run_id}/replace/before.jsonl"


def results_prefix(run_id: str, redrive: int = 0) -> str:
    """Where the fan-out's ResultWriter writes its result files."""
    return _run_folder(run_id, redrive) + MAP_RESULTS_NAME


# -- output bucket -------------------------------------------------------------------------

SUMMARY_NAME = "_SUMMARY.json"
REJECTS_NAME = "rejects.jsonl"


def output_prefix(job_output_prefix: str, run_id: str) -> str:
    """The folder of everything a run writes to the output bucket."""
    return f"{job_output_prefix}{run_id}/"


def part_key(run_output_prefix: str, item: int) -> str:
    """An item's output records."""
    return f"{run_output_prefix}part-{item:05d}.jsonl"


def rejects_part_key(run_output_prefix: str, item: int) -> str:
    """An item's rejected lines, merged by Finalize into the run's :func:`rejects_key`."""
    return f"{run_output_prefix}rejects/part-{item:05d}.jsonl"


def rejects_key(run_output_prefix: str) -> str:
    return run_output_prefix + REJECTS_NAME


def summary_key(run_output_prefix: str) -> str:
    return run_output_prefix + SUMMARY_NAME


# Underscored like the summary: Athena and Hive skip files whose names start with '_'.
RESULT_NAME = "_RESULT.json"


def result_key(run_output_prefix: str) -> str:
    """The run's result: what its combine step returned."""
    return run_output_prefix + RESULT_NAME


# -- ledger --------------------------------------------------------------------------------

RUN_SK = "RUN"
TRIGGER_SK = "TRIGGER"
EXECUTION_SK = "EXECUTION"
ITEM_PREFIX = "ITEM#"
UNIT_PREFIX = "UNIT#"


def run_pk(run_id: str) -> str:
    """The partition of a run: its record, its items and its unit digests."""
    return f"RUN#{run_id}"


def item_sort_key(index: int) -> str:
    return f"{ITEM_PREFIX}{index:07d}"


def unit_sort_key(manifest: int, unit: int) -> str:
    return f"{UNIT_PREFIX}{manifest:04d}#{unit:07d}"


def trigger_pk(identity: str) -> str:
    return f"TRIGGER#{identity}"


def execution_pk(execution_id: str) -> str:
    """Where the ledger says which run an execution (its ARN) is for."""
    return f"EXECUTION#{execution_id}"


# -- trigger identities --------------------------------------------------------------------

# What S3 reports as the version id of an object written while versioning was never enabled
# or was suspended:
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/AddingObjectstoVersionSuspendedBuckets.html
_NULL_VERSION = "null"


def object_version(version_id: str | None) -> str | None:
    """An object's version id, or None if its bucket did not give it one."""
    return version_id if version_id not in (None, "", _NULL_VERSION) else None


def upload_identity(
    bucket: str,
    key: str,
    *,
    version_id: str | None,
    sequencer: str | None = None,
    etag: str | None = None,
) -> str | None:
    """One upload's identity: shared by every delivery of its event, new for a new upload.

    An upload to a versioned bucket (the stack's input bucket is one) is its object version.
    An unversioned bucket has no version to name, so the upload is named by its event's
    sequencer, which S3 gives each write of a key, and the ETag. Only the event carries the
    sequencer: without a version id or a sequencer the upload cannot be named (None).
    """
    version = object_version(version_id)
    if version is not None:
        return f"{bucket}/{key}#{version}"
    if not sequencer:
        return None
    return f"{bucket}/{key}#{sequencer}:{etag or ''}"


def schedule_identity(run_id: str) -> str:
    """A scheduled run's trigger: its run id, which the scheduled time decides."""
    return f"schedule/{run_id}"


# -- containers ----------------------------------------------------------------------------


def ecs_started_by(run_id: str) -> str:
    """The ``startedBy`` of every ECS task of a run: ListTasks finds them by it."""
    return run_id


def batch_job_name(run_id: str, unit: int, attempt: int) -> str:
    """The name of the Batch job that runs one attempt of a unit."""
    return f"{run_id}-unit-{unit}-attempt-{attempt}"


def is_batch_job_of_unit(job_name: str, run_id: str, unit: int) -> bool:
    """Whether :func:`batch_job_name` gave ``job_name`` to an attempt of this unit."""
    return re.fullmatch(rf"{re.escape(run_id)}-unit-{unit}-attempt-\d+", job_name) is not None


def is_batch_job_of_run(job_name: str, run_id: str) -> bool:
    """Whether :func:`batch_job_name` gave ``job_name`` to a job of this run."""
    return re.fullmatch(rf"{re.escape(run_id)}-unit-\d+-attempt-\d+", job_name) is not None


# -- per-job compute -----------------------------------------------------------------------
# Task definitions, job definitions and roles follow the job files (stepburst.job_compute
# creates them on every deploy); queues are the stack's (template.yaml). The planner names
# them in each unit, so a new job needs no state machine change.

_TASK_FAMILY_LIMIT = 255
_JOB_DEFINITION_LIMIT = 128
# Batch compute environment and job queue names, EC2 launch template names.
_BATCH_NAME_LIMIT = 128
_ROLE_NAME_LIMIT = 64


def _bounded(name: str, limit: int) -> str:
    """``name``, or its head and a digest of the whole when it is longer than ``limit``."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: limit - 11]}-{digest}"


def job_resource_prefix(stack: str) -> str:
    """What every per-job task definition, job definition and role name starts with."""
    return f"{stack}-job-"


def job_task_definition(stack: str, job: str) -> str:
    """The ECS task definition family of a job (RunTask takes its latest revision)."""
    return _bounded(job_resource_prefix(stack) + job, _TASK_FAMILY_LIMIT)


def job_definition(stack: str, job: str) -> str:
    """The Batch job definition of a job (SubmitJob takes its latest active revision)."""
    return _bounded(job_resource_prefix(stack) + job, _JOB_DEFINITION_LIMIT)


def job_role_path(stack: str) -> str:
    """The IAM path of the stack's per-job roles: the state machine may pass only these."""
    return f"/stepburst/{stack}/"


def job_role_name(stack: str, job: str) -> str:
    return _bounded(job_resource_prefix(stack) + job, _ROLE_NAME_LIMIT)


def job_queue(stack: str, *, capacity: str, architecture: str, spot: bool) -> str:
    """The stack's Batch queue for a capacity (fargate, ec2), architecture and purchase.

    Fargate Spot is x86_64 only, so Fargate has one Spot queue (Spot first, on-demand when
    Spot has no capacity) and one on-demand queue for both architectures.
    """
    purchase = "spot" if spot else "on-demand"
    if capacity == "fargate":
        return f"{stack}-fargate-{purchase}"
    return f"{stack}-ec2-{purchase}-{architecture.replace('_', '-')}"


def job_own_queue(stack: str, job: str) -> str:
    """The Batch queue of a job with its own compute environment (stepburst.job_machines)."""
    return _bounded(job_resource_prefix(stack) + job, _BATCH_NAME_LIMIT)


def job_compute_environment(stack: str, job: str, variant: str = "") -> str:
    """A job's own compute environment; ``variant`` names the one that replaces it."""
    base = job_resource_prefix(stack) + job
    return _bounded(f"{base}-{variant}" if variant else base, _BATCH_NAME_LIMIT)


def job_launch_template(stack: str, job: str) -> str:
    """The EC2 launch template of a job's own compute environment (its root volume)."""
    return _bounded(job_resource_prefix(stack) + job, _BATCH_NAME_LIMIT)
