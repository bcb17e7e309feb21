"""The job spec: one YAML file in ``jobs/`` per job.

The pydantic models below are the source of the JSON Schema shipped as ``job.schema.json``
(``python -m stepburst.jobs.schema`` writes it; a test keeps the two identical). Files are
validated against that schema first, so every error names the file and the field path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from stepburst.jobs.compute_rules import (
    FARGATE_STORAGE_GB,
    INSTANCE_TYPE_PATTERN,
    ComputeFieldError,
    fargate_memory_problem,
    instance_architecture,
)
from stepburst.jobs.output_keys import check_output_key
from stepburst.jobs.pipeline import BUILTIN_VARIABLES, Step, unknown_variables
from stepburst.jobs.schedule_expressions import check_schedule_expression

JOB_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
FUNCTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"
PARAM_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# A secret becomes an environment variable of that name.
SECRET_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
# These configure the runtime itself: a job never replaces them.
RESERVED_ENV_PREFIXES = ("AWS_", "STEPBURST_", "POWERTOOLS_", "PYTHON", "LAMBDA_", "ECS_")
# A Secrets Manager secret ARN, or an SSM parameter name or ARN.
SECRET_SOURCE_PATTERN = r"^(arn:aws[a-z-]*:(secretsmanager|ssm):\S+|[A-Za-z0-9_./-]+)$"
# The schema gives editors the shape; check_schedule_expression checks every field.
SCHEDULE_PATTERN = r"^(cron|rate|at)\(.*\)$"
# Glue names that Athena reads without quoting: lower case letters, digits and underscores.
GLUE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,254}$"
# A relative key ending in '/': literal text and {name} variables.
OUTPUT_KEY_PATTERN = r"^[^/{}]([^{}]|\{[A-Za-z_][A-Za-z0-9_]*\})*/$"

# Lambda's hard wall is 900 s; items the planner expects to need more than this go to a
# container, so that a slower-than-estimated item still finishes inside Lambda.
DEFAULT_LAMBDA_MAX_SECONDS = 450
# bench/jsonl_throughput.py measures the processor at ~260 MB/s on one core with the example
# job; a 1,769 MB Lambda has about one vCPU and shares it with S3 I/O, so plan on far less.
DEFAULT_JSONL_MB_PER_SECOND = 100.0
# A range that is mostly rejects is the wrong file or the wrong transform, not bad records: it
# fails instead of ending quietly with no output. Above any real job's share of bad lines.
DEFAULT_MAX_REJECT_PERCENT = 50.0


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class S3Trigger(_Spec):
    """Objects created in the input bucket under ``prefix`` and ending in ``suffix``."""

    prefix: str = Field(min_length=1, description="Key prefix in the input bucket.")
    suffix: str = Field(default="", description="Key suffix, e.g. '.jsonl'.")


class Schedule(_Spec):
    """An EventBridge Scheduler schedule, created and kept in sync on deploy."""

    expression: str = Field(
        pattern=SCHEDULE_PATTERN,
        description="cron(...), rate(...) or at(...), as EventBridge Scheduler takes them.",
    )
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Paris.")
    input: dict[str, Any] = Field(
        default_factory=dict, description="The run's input, as a manual start would give it."
    )
    enabled: bool = True

    @field_validator("expression")
    @classmethod
    def _valid_expression(cls, value: str) -> str:
        check_schedule_expression(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class Triggers(_Spec):
    s3: list[S3Trigger] = Field(default_factory=list, description="Upload triggers.")
    schedule: Schedule | None = Field(default=None, description="A daily or periodic start.")
    manual: bool = Field(default=True, description="Whether manual starts are allowed.")


class JsonlSplit(_Spec):
    """Split a line-delimited JSON object into newline-aligned byte ranges."""

    range_mb: float = Field(default=64, gt=0, le=51200, description="Target range size in MB.")
    max_reject_percent: float = Field(
        default=DEFAULT_MAX_REJECT_PERCENT,
        ge=0,
        le=100,
        description=(
            "An item whose rejected lines are more than this share of its non-blank lines "
            "fails (its rejects are kept); 100 turns the bound off."
        ),
    )


# The most items one plan may hold: Plan streams its manifest in constant memory, and this
# many take under three minutes of the Plan function's 300 s on its one vCPU (README).
MAX_PLANNED_ITEMS = 10_000_000


class CsvSplit(_Spec):
    """Split a CSV object into byte ranges of whole records; each range reads the header."""

    range_mb: float = Field(default=64, gt=0, le=51200, description="Target range size in MB.")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    max_reject_percent: float = Field(
        default=DEFAULT_MAX_REJECT_PERCENT,
        ge=0,
        le=100,
        description="As for jsonl: an item with more rejected records than this fails.",
    )


class ParquetSplit(_Spec):
    """One item per row group of a Parquet object."""

    max_reject_percent: float = Field(
        default=DEFAULT_MAX_REJECT_PERCENT,
        ge=0,
        le=100,
        description="As for jsonl: an item with more rejected records than this fails.",
    )


class FunctionSplit(_Spec):
    """The job's own code decides the items: ``f(input, params)`` yields item names, or
    mappings with ``name`` and an optional ``seconds`` estimate."""

    function: str = Field(
        pattern=FUNCTION_PATTERN, description="module:function, importable from jobs/."
    )
    max_items: int = Field(
        default=1_000_000, ge=1, le=MAX_PLANNED_ITEMS, description="Refuse larger plans."
    )


class ItemsSplit(_Spec):
    """One item per work-item name: ``input.items`` is a list of names or a range expression
    such as ``Dam001/Period01-16``; ``input.items_key`` names a list file in the input bucket."""

    max_items: int = Field(
        default=1_000_000, ge=1, le=MAX_PLANNED_ITEMS, description="Refuse larger inputs."
    )


class ObjectsSplit(_Spec):
    """One item per object under a prefix of the input bucket (``input.prefix`` or this one)."""

    prefix: str = Field(default="", description="Default prefix when the input gives none.")
    suffix: str = Field(default="", description="Only keys ending in this.")
    max_items: int = Field(default=1_000_000, ge=1, le=MAX_PLANNED_ITEMS)


class DateSplit(_Spec):
    """One item: a date (``input.date``; for scheduled runs, the scheduled day in the
    schedule's time zone; otherwise today in UTC)."""

    format: str = Field(default="%Y%m%d", description="strftime format of the item's date.")


class SingleSplit(_Spec):
    """One item, named by ``input.item`` (default: the job's name)."""


class Split(_Spec):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    jsonl: JsonlSplit | None = None
    items: ItemsSplit | None = None
    objects: ObjectsSplit | None = None
    date: DateSplit | None = None
    single: SingleSplit | None = None
    function: FunctionSplit | None = None
    csv: CsvSplit | None = None
    parquet: ParquetSplit | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Split:
        if sum(value is not None for value in self.__dict__.values()) != 1:
            raise ValueError("give exactly one way to split")
        return self


class Run(_Spec):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    function: str | None = Field(
        default=None,
        pattern=FUNCTION_PATTERN,
        description=(
            "module:function, importable from jobs/. For jsonl splits it transforms one "
            "record; for the other splits it runs one item: f(item, params), returning a "
            "mapping (kept in the item's ledger record) or None."
        ),
    )
    command: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "A command line run once per item, with {VAR} replaced from ITEM, ITEM_INDEX, "
            "RUN_ID, JOB, the run's params and the environment."
        ),
    )
    steps: list[Step] | None = Field(
        default=None,
        min_length=1,
        description=(
            "Steps run in order per item in a scratch directory of its own: fetch, command, "
            "function or store. A failed step stops the item."
        ),
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Run:
        given = [self.function, self.command, self.steps]
        if sum(value is not None for value in given) != 1:
            raise ValueError("give exactly one of function, command or steps")
        return self


class Combine(Run):
    """What runs once after every item, over the manifest of their outputs.

    The same shape as ``run`` (exactly one way to run), so a way added to ``run`` is a way
    to combine too; :mod:`stepburst.combining` says which of them it can run.
    """

    # One way to run, and optionally where.
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    function: str | None = Field(
        default=None,
        pattern=FUNCTION_PATTERN,
        description=(
            "module:function, importable from jobs/: f(manifest_key, params) with params "
            "holding COMBINE_MANIFEST, COMBINE_MANIFEST_BUCKET, OUTPUT_BUCKET, OUTPUT_PREFIX, "
            "RUN_ID, JOB and the run's params; returns a mapping (the run's result) or None."
        ),
    )
    command: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "A command line run once, with {VAR} replaced as for run.command plus "
            "{COMBINE_MANIFEST} and {COMBINE_RESULT}: a JSON object written to the file "
            "COMBINE_RESULT names is the run's result."
        ),
    )
    platform: Literal["lambda", "ecs"] | None = Field(
        default=None,
        description="Where it runs; by default ECS for jobs whose compute.platform is ecs "
        "or batch, Lambda (up to 900 s) otherwise.",
    )


Platform = Literal["auto", "lambda", "ecs", "batch"]
Architecture = Literal["x86_64", "arm64"]


Capacity = Literal["fargate", "ec2"]
# An image reference as ECS and Batch take it: [registry/]repository[:tag][@digest].
IMAGE_PATTERN = r"^[a-z0-9][a-z0-9._/:@-]{0,254}$"
S3_LOCATION_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"
# A secret's source as ECS takes it in valueFrom: a Secrets Manager secret's ARN (with an
# optional ":json-key:version-stage:version-id" suffix), an SSM parameter's ARN, or the name
# of a parameter in the stack's Region.


class BatchCapacity(_Spec):
    """Where a ``platform: batch`` job runs: Fargate, or EC2 instances Batch starts for it."""

    capacity: Capacity = Field(
        default="fargate", description="fargate, or ec2 for instance types, GPUs, bigger sizes."
    )
    instance_types: list[Annotated[str, Field(pattern=INSTANCE_TYPE_PATTERN)]] = Field(
        default_factory=list,
        description="EC2 only: instance types or families the job may run on (optimal, m7g, "
        "c6i.large); empty takes the stack's EC2 environment of the job's architecture.",
    )
    spot: bool | None = Field(
        default=None,
        description="Run on Spot capacity; unset follows compute.spot (Fargate Spot is "
        "x86_64 only, EC2 Spot has both architectures).",
    )
    gpus: int = Field(default=0, ge=0, le=16, description="EC2 only: GPUs per container.")


class Compute(_Spec):
    platform: Platform = Field(
        default="auto", description="auto routes each item by its estimated duration."
    )
    lambda_memory_mb: int = Field(
        default=1769,
        ge=128,
        le=10240,
        description=(
            "Lambda memory the cost estimate assumes; the ProcessItems function's own memory "
            "is set in template.yaml."
        ),
    )
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
    image: str | None = Field(
        default=None,
        pattern=IMAGE_PATTERN,
        description="The container image; default the stack's worker image. It must run "
        "`python -m stepburst.worker` (built FROM the worker image, or Python 3.11+ with "
        "stepburst installed).",
    )
    batch: BatchCapacity | None = Field(
        default=None, description="platform batch only: Fargate or EC2 capacity."
    )
    storage_gb: int | None = Field(
        default=None,
        ge=1,
        le=16384,
        description="Scratch disk in GiB: Fargate ephemeral storage (21 to 200).",
    )

    @model_validator(mode="after")
    def _placeable(self) -> Compute:
        on_ec2 = self.batch is not None and self.batch.capacity == "ec2"
        if self.batch is not None and self.platform != "batch":
            raise ComputeFieldError("batch", "only a platform: batch job takes compute.batch")
        if self.image is not None and self.platform not in ("ecs", "batch"):
            raise ComputeFieldError(
                "image", "Lambda items do not run an image: set platform ecs or batch"
            )
        if not on_ec2:
            problem = fargate_memory_problem(self.cpu, self.memory_mb)
            if problem is not None:
                raise ComputeFieldError("memory_mb", problem + " (EC2 capacity has no table)")
            if self.storage_gb is not None and not (
                FARGATE_STORAGE_GB[0] <= self.storage_gb <= FARGATE_STORAGE_GB[1]
            ):
                low, high = FARGATE_STORAGE_GB
                raise ComputeFieldError(
                    "storage_gb", f"Fargate ephemeral storage is {low} to {high} GiB"
                )
        if self.architecture == "arm64" and not on_ec2:
            spot_field = "batch.spot" if self.batch and self.batch.spot is not None else "spot"
            explicit = (self.batch is not None and self.batch.spot) or (
                "spot" in self.model_fields_set and self.spot
            )
            if explicit:
                raise ComputeFieldError(
                    spot_field,
                    "Fargate Spot runs x86_64 only: set it false, or run arm64 on "
                    "batch capacity ec2",
                )
        if self.batch is None:
            return self
        if self.batch.gpus and not on_ec2:
            raise ComputeFieldError("batch.gpus", "Fargate has no GPUs: use capacity: ec2")
        if self.batch.instance_types and not on_ec2:
            raise ComputeFieldError("batch.instance_types", "only capacity: ec2 has instance types")
        for index, instance_type in enumerate(self.batch.instance_types):
            found = instance_architecture(instance_type)
            if found != self.architecture:
                raise ComputeFieldError(
                    f"batch.instance_types[{index}]",
                    f"{instance_type} is {found}, the job is {self.architecture}",
                )
        return self

    @property
    def on_ec2(self) -> bool:
        return self.batch is not None and self.batch.capacity == "ec2"

    @property
    def uses_spot(self) -> bool:
        """Whether the job's containers run on Spot capacity (arm64 Fargate never does)."""
        spot = self.batch.spot if self.batch is not None and self.batch.spot is not None else None
        wanted = self.spot if spot is None else spot
        return wanted and (self.on_ec2 or self.architecture == "x86_64")


class Estimate(_Spec):
    mb_per_second: float = Field(
        default=DEFAULT_JSONL_MB_PER_SECOND,
        gt=0,
        description="Byte-range items: throughput of one worker, used to route items.",
    )
    seconds_per_item: float = Field(
        default=1.0, gt=0, description="Work items: expected seconds for one item."
    )


class Column(_Spec):
    name: str = Field(pattern=GLUE_NAME_PATTERN, description="Column name, lower case.")
    type: str = Field(
        min_length=1,
        description="Hive type as Athena reads it: string, bigint, double, boolean, "
        "timestamp, array<string>, struct<a:int,b:string>, ...",
    )
    comment: str = ""


class Table(_Spec):
    """A Glue table over the job's outputs, kept on every deploy; each successful run
    registers its partition, so Athena reads a day's outputs as soon as its run ends."""

    name: str = Field(pattern=GLUE_NAME_PATTERN, description="Table name in the stack's database.")
    format: Literal["avro", "parquet", "jsonl"]
    columns: list[Column] = Field(
        default_factory=list,
        description="The table's columns; an avro table may take them from schema instead.",
    )
    schema_file: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_./-]+\.avsc$",
        description="avro only: an Avro schema (.avsc) in jobs/, the table's columns and "
        "avro.schema.literal.",
    )
    partition_by: list[Annotated[str, Field(pattern=PARAM_NAME_PATTERN)]] = Field(
        default_factory=list,
        description="Template variables of output.key that partition the table, e.g. [date].",
    )
    description: str = ""

    @model_validator(mode="after")
    def _columns_known(self) -> Table:
        if self.schema_file is not None and self.format != "avro":
            raise ValueError("schema_file is for avro tables; give columns")
        if self.schema_file is None and not self.columns:
            raise ValueError("give columns (or, for avro, schema_file)")
        if len(set(self.partition_by)) != len(self.partition_by):
            raise ValueError("partition_by names a variable twice")
        return self


class Output(_Spec):
    prefix: str | None = Field(
        default=None,
        pattern=r"^[^/].*/$",
        description="Key prefix in the output bucket; runs write under <prefix><run id>/.",
    )
    key: str | None = Field(
        default=None,
        pattern=OUTPUT_KEY_PATTERN,
        description="Instead of prefix: where a run writes, as a template of {date}, {item}, "
        "{run_id}, {job} and the job's params, e.g. ztf/alerts/date={date}/.",
    )
    replace: bool = Field(
        default=False,
        description="A run replaces what earlier runs wrote under the same rendered key "
        "(e.g. the same date): after it succeeds, their objects that it did not rewrite "
        "are deleted.",
    )
    table: Table | None = Field(default=None, description="A Glue table over the outputs.")

    @model_validator(mode="after")
    def _one_location(self) -> Output:
        if (self.prefix is None) == (self.key is None):
            raise ValueError("give exactly one of prefix or key")
        if self.replace and self.key is None:
            raise ValueError("replace needs a key template: runs under a prefix never collide")
        if self.table is not None and self.key is None:
            raise ValueError("a table needs a key template with its partition variables")
        return self


class FailurePolicy(_Spec):
    """How failures other than the job's own code are retried (see README, "Failure policy")."""

    infrastructure_attempts: int = Field(
        default=6,
        ge=1,
        le=20,
        description="Attempts of a unit through throttling, capacity, Spot or host loss, "
        "image pulls and service errors, counted apart from retries.",
    )
    memory_cap_mb: int = Field(
        default=30720,
        ge=512,
        le=122880,
        description="An out-of-memory unit runs again with twice the memory, up to this.",
    )
    spot_fallback_after: int = Field(
        default=2,
        ge=1,
        le=20,
        description="After this many Spot capacity failures or interruptions, a unit "
        "runs on on-demand capacity.",
    )


class Access(_Spec):
    """S3 locations (``s3://bucket/prefix``) the job's own code is granted, beyond its input
    objects and its output prefix."""

    read: list[Annotated[str, Field(pattern=S3_LOCATION_PATTERN)]] = Field(
        default_factory=list, description="Locations the job's code may list and read."
    )
    write: list[Annotated[str, Field(pattern=S3_LOCATION_PATTERN)]] = Field(
        default_factory=list, description="Locations the job's code may write and delete."
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
    retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Attempts after the first when the job's own code fails an item.",
    )
    failure_policy: FailurePolicy = Field(default_factory=FailurePolicy)
    tolerated_failure_percent: float = Field(default=0, ge=0, le=100)
    max_concurrency: int = Field(default=100, ge=1, le=10000)
    combine: Combine | None = Field(
        default=None,
        description="Runs once after the items when their failures are within "
        "tolerated_failure_percent; its result is the run's result.",
    )
    output: Output
    params: dict[Annotated[str, Field(pattern=PARAM_NAME_PATTERN)], str] = Field(
        default_factory=dict,
        description=(
            "The params a start may give (--param NAME=VALUE), with their defaults. "
            "Containers get them as env."
        ),
    )
    params_open: bool = Field(
        default=False,
        description="Accept params that params does not declare; by default a start's "
        "undeclared param is refused, so a misspelt name never passes unseen.",
    )
    input_schema: dict[str, Any] | None = Field(
        default=None,
        description="JSON Schema that a manual start's input must satisfy.",
    )
    access: Access = Field(
        default_factory=Access,
        description="S3 locations the job's code reads or writes beyond the stack's buckets.",
    )
    secrets: dict[
        Annotated[str, Field(pattern=SECRET_NAME_PATTERN)],
        Annotated[str, Field(pattern=SECRET_SOURCE_PATTERN)],
    ] = Field(
        default_factory=dict,
        description=(
            "NAME: a Secrets Manager secret ARN, or an SSM parameter name or ARN. Read when an "
            "item runs (an environment variable NAME already set, as ECS and Batch set task "
            "secrets, is used as it is) and given to its commands and functions as the "
            "environment variable NAME; its value is never shown."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Job:
        records = self.split.jsonl or self.split.csv or self.split.parquet
        if records is not None and self.run.function is None:
            raise ValueError(
                "a jsonl, csv or parquet split runs a record function: give run.function"
            )
        if self.triggers.s3 and records is None and self.split.single is None:
            raise ValueError("upload triggers need a jsonl, csv, parquet or single split")
        check_output_key(self)
        self._check_secret_names()
        self._check_step_variables()
        return self

    def _check_secret_names(self) -> None:
        for name in self.secrets:
            if name.startswith(RESERVED_ENV_PREFIXES) or name in ("PATH", "HOME"):
                _raise_at(("secrets", name), f"{name} is an environment variable of the runtime")
            if name in self.params or name in BUILTIN_VARIABLES:
                _raise_at(("secrets", name), f"{name} is already a param or a built-in variable")

    def _check_step_variables(self) -> None:
        # An open job takes params nobody declared: its names are only known at run time.
        if self.run.steps is None or self.params_open:
            return
        known = BUILTIN_VARIABLES | frozenset(self.params)
        for index, step in enumerate(self.run.steps):
            # Secrets fill a command's arguments only: keys and paths are logged and recorded.
            allowed = known | frozenset(self.secrets) if step.command is not None else known
            for path, template in step.templates():
                unknown = unknown_variables(template, allowed)
                if unknown:
                    where = "a param or a built-in variable"
                    if unknown[0] in self.secrets:
                        where = "usable here: a secret fills only a command's arguments"
                    _raise_at(("run", "steps", index, *path), f"{{{unknown[0]}}} is not {where}")


def _raise_at(location: tuple[str | int, ...], problem: str) -> None:
    """Fail validation at ``location`` (a field path), as a field's own validator would."""
    error: InitErrorDetails = {
        "type": PydanticCustomError("job_field", "{problem}", {"problem": problem}),
        "loc": location,
        "input": None,
    }
    raise ValidationError.from_exception_data("Job", [error])
