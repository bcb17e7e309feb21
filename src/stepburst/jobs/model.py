"""The job spec: one YAML file in ``jobs/`` per job.

The pydantic models below are the source of the JSON Schema shipped as ``job.schema.json``
(``python -m stepburst.jobs.schema`` writes it; a test keeps the two identical). Files are
validated against that schema first, so every error names the file and the field path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

JOB_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
FUNCTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"

# Lambda's hard wall is 900 s; items the planner expects to need more than this go to a
# container, so that a slower-than-estimated item still finishes inside Lambda.
DEFAULT_LAMBDA_MAX_SECONDS = 450
# bench/jsonl_throughput.py measures the processor at ~260 MB/s on one core with the example
# job; a 1,769 MB Lambda has about one vCPU and shares it with S3 I/O, so plan on far less.
DEFAULT_JSONL_MB_PER_SECOND = 100.0


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class S3Trigger(_Spec):
    """Objects created in the input bucket under ``prefix`` and ending in ``suffix``."""

    prefix: str = Field(min_length=1, description="Key prefix in the input bucket.")
    suffix: str = Field(default="", description="Key suffix, e.g. '.jsonl'.")


class Triggers(_Spec):
    s3: list[S3Trigger] = Field(default_factory=list, description="Upload triggers.")
    manual: bool = Field(default=True, description="Whether manual starts are allowed.")


class JsonlSplit(_Spec):
    """Split a line-delimited JSON object into newline-aligned byte ranges."""

    range_mb: float = Field(default=64, gt=0, le=51200, description="Target range size in MB.")


class ItemsSplit(_Spec):
    """One item per work-item name, given at start as ``input.items`` (a list of names)."""

    max_items: int = Field(default=1_000_000, ge=1, description="Refuse larger inputs.")


class Split(_Spec):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    jsonl: JsonlSplit | None = None
    items: ItemsSplit | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Split:
        if sum(value is not None for value in self.__dict__.values()) != 1:
            raise ValueError("give exactly one way to split")
        return self


class Run(_Spec):
    function: str = Field(
        pattern=FUNCTION_PATTERN,
        description=(
            "module:function, importable from jobs/. For jsonl splits it transforms one "
            "record; for items splits it runs one work item."
        ),
    )


Platform = Literal["auto", "lambda", "ecs", "batch"]
Architecture = Literal["x86_64", "arm64"]


class Compute(_Spec):
    platform: Platform = Field(
        default="auto", description="auto routes each item by its estimated duration."
    )
    lambda_memory_mb: int = Field(default=1769, ge=128, le=10240)
    lambda_max_seconds: int = Field(
        default=DEFAULT_LAMBDA_MAX_SECONDS,
        ge=1,
        le=840,
        description="Items estimated to take longer than this run on a container.",
    )
    cpu: Literal[256, 512, 1024, 2048, 4096, 8192, 16384] = Field(
        default=1024, description="Container CPU units (1024 = 1 vCPU)."
    )
    memory_mb: int = Field(default=2048, ge=512, le=122880)
    architecture: Architecture = "x86_64"
    spot: bool = Field(default=True, description="Run containers on Fargate Spot.")
    container_timeout_seconds: int = Field(
        default=86_400,
        ge=60,
        le=1_209_600,
        description="A container item still running after this long is stopped and failed.",
    )


class Estimate(_Spec):
    mb_per_second: float = Field(
        default=DEFAULT_JSONL_MB_PER_SECOND,
        gt=0,
        description="Byte-range items: throughput of one worker, used to route items.",
    )
    seconds_per_item: float = Field(
        default=1.0, gt=0, description="Work items: expected seconds for one item."
    )


class Output(_Spec):
    prefix: str = Field(
        min_length=1,
        pattern=r"^[^/].*/$",
        description="Key prefix in the output bucket; runs write under <prefix><run id>/.",
    )


class Job(_Spec):
    """One job: what starts it, how its input is split, what runs on each item, where."""

    name: Annotated[str, Field(pattern=JOB_NAME_PATTERN, description="Unique job name.")]
    description: str = ""
    triggers: Triggers = Field(default_factory=Triggers)
    split: Split
    run: Run
    compute: Compute = Field(default_factory=Compute)
    estimate: Estimate = Field(default_factory=Estimate)
    retries: int = Field(default=2, ge=0, le=10, description="Attempts after the first.")
    tolerated_failure_percent: float = Field(default=0, ge=0, le=100)
    max_concurrency: int = Field(default=100, ge=1, le=10000)
    output: Output
