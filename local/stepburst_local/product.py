"""What the local engine knows about the product it runs, stepburst, and nothing else does.

The engine's core (the template reader, the deployer, the compute, the patches of moto and the
in-memory cloud) works for any SAM template with handlers and a container image. The
stepburst-specific answers it needs live here: the environment variable names, which layer
holds the jobs and where the worker image expects them, the worker's image and entrypoint,
the outputs the CLI reads, and the product's caches that belong to one engine.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STACK_NAME = "stepburst-local"

JOBS_DIR_VARIABLE = "STEPBURST_JOBS_DIR"
"""Where functions and workers find the job specs and the user modules they name."""
JOBS_DIRECTORY = "jobs"
"""The project's jobs directory (the jobs layer's ContentUri)."""
JOBS_LAYER = "JobsLayer"
"""The template's layer that holds the jobs (it lands in /opt/python on Lambda)."""
IMAGE_JOBS_DIR = "/app/jobs"
"""Where ``containers/worker/Dockerfile`` copies the jobs inside the worker image."""

WORKER_DOCKERFILE = Path("containers") / "worker" / "Dockerfile"
WORKER_ENTRYPOINT = ("python", "-m", "stepburst.worker")
"""The worker's entrypoint when the project has no Dockerfile to read it from."""
WORKER_IMAGE = "stepburst-worker:local"
SOURCE_DIRECTORY = "src"
"""The product's package, importable by the workers as the image makes it."""

OUTPUT_VARIABLES = {
    "InputBucketName": "STEPBURST_INPUT_BUCKET",
    "OutputBucketName": "STEPBURST_OUTPUT_BUCKET",
    "WorkBucketName": "STEPBURST_WORK_BUCKET",
    "LedgerTableName": "STEPBURST_LEDGER_TABLE",
}
"""Outputs the CLI needs, read from the functions' environment if the template has none."""
RETENTION_VARIABLE = "STEPBURST_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 90

FUNCTION_DEFAULTS = {"POWERTOOLS_TRACE_DISABLED": "true"}
"""Set for every function unless the template sets it (no X-Ray daemon locally)."""
QUIET_ENVIRONMENT = {
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
"""What ``quiet=True`` gives functions and workers."""
LOGGER_VARIABLE = "POWERTOOLS_SERVICE_NAME"
"""Names a function's logger (Powertools reads its level once: quiet lowers it after)."""
DEFAULT_LOGGER = "service_undefined"


def holds_jobs(logical_id: str, content_dir: Path, project_root: Path) -> bool:
    """Whether a layer of the template is the jobs layer (replaced by ``jobs_dir``)."""
    return logical_id == JOBS_LAYER or content_dir == (project_root / JOBS_DIRECTORY).resolve()


COLD_START_MODULE = "stepburst.cold_start"
"""The module whose ``reset()`` forgets what any handler built at cold start (it imports
nothing else of the product, so importing it builds no logger before the functions' environment
is in place)."""
if importlib.util.find_spec(COLD_START_MODULE) is None:  # moved: say so, never skip the reset
    raise ImportError(f"the local engine resets {COLD_START_MODULE}, which no longer exists")


def reset_caches() -> None:
    """Forget the product's clients and cold-start objects, built for another engine's
    endpoint or stack (the one place the engine resets product state). Every cold-start cache,
    not only the ones of modules the last engine's handlers happened to import: a custom
    resource's handler caches the settings (and their jobs directory) without the planner."""
    from stepburst import aws

    aws.reset_clients()
    importlib.import_module(COLD_START_MODULE).reset()


def publish_outputs(ssm: Any, outputs: Mapping[str, Any]) -> None:
    """Where ``stepburst --local`` finds the stack's outputs, as it reads CloudFormation's.

    What ``stepburst.stack.publish_local`` does, with the engine's client instead of the
    product's client factory; the parameter's name is the product's.
    """
    from stepburst.stack import LOCAL_OUTPUTS_PARAMETER

    ssm.put_parameter(
        Name=LOCAL_OUTPUTS_PARAMETER, Value=json.dumps(dict(outputs)), Type="String", Overwrite=True
    )


def ledger(table_name: str, function_environment: Mapping[str, str]) -> Any:
    """The stack's ledger (``stepburst.ledger.Ledger``), for tests and the demo."""
    from stepburst.ledger import Ledger

    retention = function_environment.get(RETENTION_VARIABLE, str(DEFAULT_RETENTION_DAYS))
    return Ledger(table_name, int(retention))


def schedule_fire_times(
    expression: str, timezone: str, *, after: Any, until: Any, anchor: Any = None
) -> Any:
    """When a schedule fires between ``after`` and ``until``, as the product reads its
    schedules (time zones and DST as EventBridge Scheduler reads them)."""
    from stepburst.jobs.schedule_times import fire_times

    return fire_times(expression, timezone, after=after, until=until, anchor=anchor)
