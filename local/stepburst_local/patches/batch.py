"""Batch: jobs really run, and batch:submitJob answers like Step Functions does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stepburst_local.binding import current
from stepburst_local.moto_internals import BatchSimpleBackend, Job, StateTaskServiceBatch
from stepburst_local.patches.failures import BATCH_ERRORS, from_client_errors
from stepburst_local.patches.tracking import started_by_execution
from stepburst_local.patching import Hook, patch

batch_sync = Hook(
    "batch_sync",
    why="batch:submitJob errors are named after the SDK exception on AWS "
    "(Batch.AWSBatchException for unmodeled codes); submitted jobs are tracked so that "
    "StopExecution terminates them.",
    upstream="no upstream issue found",
)


@patch(batch_sync, StateTaskServiceBatch, "_eval_service_task")
def _eval_service_task(  # noqa: PLR0917 - moto's signature
    original: Callable[..., None],
    self: Any,
    env: Any,
    resource_runtime_part: Any,
    normalised_parameters: dict[str, Any],
    state_credentials: Any,
) -> None:
    # https://docs.aws.amazon.com/step-functions/latest/dg/connect-batch.html
    original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
    response = env.stack[-1]
    job_id = response.get("jobId") or response.get("JobId")
    if job_id:
        started_by_execution(env, "batch", (str(job_id),))


patch(batch_sync, StateTaskServiceBatch, "_from_error")(from_client_errors(BATCH_ERRORS))


batch_jobs_run = Hook(
    "batch_jobs_run",
    why="moto's Batch without Docker marks a job SUCCEEDED at once. Each job runs the worker "
    "entrypoint; it is RUNNING until the process exits, then SUCCEEDED or FAILED, and "
    "DescribeJobs reports container.exitCode and statusReason like AWS (and does not grow "
    "by one environment entry per describe).",
    upstream="no upstream issue found (succeeding at once is moto's documented Docker-less "
    "Batch, getmoto/moto#5100)",
)


@patch(batch_jobs_run, BatchSimpleBackend, "_mark_job_as_finished")
def _mark_job_as_finished(
    original: Callable[..., None], self: Any, include_start_attempt: bool, job: Any
) -> None:
    bindings = current()
    if bindings is None or not include_start_attempt:
        original(self, include_start_attempt, job)
        return

    # moto registers the job, starts its attempt and then marks it stopped at once; instead
    # of that last step the job runs, and its process's exit marks it stopped.
    def run_instead(success: bool = True) -> None:
        del job._mark_stopped  # moto's own method again, for the exit
        job.status = "RUNNING"
        if not bindings.start_batch_job(job):
            job._mark_stopped(success=True)

    job._mark_stopped = run_instead
    original(self, include_start_attempt, job)


@patch(batch_jobs_run, Job, "describe")
def _describe(original: Callable[[Any], dict[str, Any]], self: Any) -> dict[str, Any]:
    # moto appends AWS_BATCH_JOB_ID to the job's override list on every describe: with
    # .sync polling, a long job's description would grow past the payload quota.
    overrides = self.container_overrides.get("environment")
    saved = list(overrides) if overrides is not None else None
    try:
        result = original(self)
    finally:
        if saved is not None:
            self.container_overrides["environment"] = saved
    extra = getattr(self, "local_container", None)
    if extra and isinstance(result.get("container"), dict):
        result["container"].update(extra)
    return result


HOOKS = (batch_sync, batch_jobs_run)
