"""Configuration from the environment: one validated model, read once at cold start.

The template sets these variables on every function and on the worker task; a missing one
fails fast with its name instead of falling back to a silent default.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stepburst.cold_start import once_per_process
from stepburst.errors import StepburstError

ENV_PREFIX = "STEPBURST_"


class ConfigurationError(StepburstError):
    """A required environment variable is missing or invalid."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    ledger_table: str = Field(min_length=1)
    input_bucket: str = Field(min_length=1)
    output_bucket: str = Field(min_length=1)
    work_bucket: str = Field(min_length=1)
    jobs_dir: Path
    event_bus_name: str = Field(min_length=1)
    retention_days: int = Field(ge=1)
    # Per-job task and job definitions, queues and roles are named after it (layout).
    stack_name: str = Field(min_length=1)
    # The worker task and job definitions' architecture; functions know it, workers need not.
    worker_architecture: Literal["X86_64", "ARM64"] | None = None
    # The Glue database of the jobs' output tables (output.table); the template sets it.
    tables_database: str | None = None
    # The jobs digest the worker image carries (WorkerJobsDigest); Plan checks the layer's.
    worker_jobs_digest: str | None = None

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Settings:
        source = os.environ if environ is None else environ
        values = {
            name[len(ENV_PREFIX) :].lower(): value
            for name, value in source.items()
            if name.startswith(ENV_PREFIX)
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigurationError(problems) from exc


@once_per_process
@cache
def settings() -> Settings:
    """The process's settings, validated on first use."""
    return Settings.from_environment()
