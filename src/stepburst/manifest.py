"""The run manifest: the work units a plan produced, stored in S3 as one JSON array.

The planner writes it with :mod:`stepburst.manifest_stream` (msgspec, one unit a line, as the
items are made); these models read a unit back wherever one travels alone.

The Distributed Map reads it with its ItemReader, so each unit travels alone and the state
machine's payloads never carry the item list. A unit groups items that share a route: small
Lambda items are grouped so that transitions grow with units, not items; container items run
one per unit.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Route = Literal["lambda", "ecs", "batch"]
ContainerRoute = Literal["ecs", "batch"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceObject(_Model):
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None


class JsonlRange(_Model):
    source: SourceObject
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class CsvRange(_Model):
    source: SourceObject
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    header_end: int = Field(ge=0, description="The header is bytes [0, header_end).")
    delimiter: str = ","


class ParquetRowGroup(_Model):
    source: SourceObject
    row_group: int = Field(ge=0)
    rows: int = Field(ge=0)
    bytes: int = Field(ge=0)


class Item(_Model):
    index: int = Field(ge=0)
    sk: str
    estimated_seconds: float = Field(ge=0)
    jsonl: JsonlRange | None = None
    value: str | None = None
    csv: CsvRange | None = None
    parquet: ParquetRowGroup | None = None

    @property
    def size_bytes(self) -> int:
        span = self.jsonl or self.csv
        if span is not None:
            return span.end - span.start
        return self.parquet.bytes if self.parquet is not None else 0


class EcsCompute(_Model):
    task_definition: str = Field(min_length=1, description="The job's task definition family.")
    cpu: str
    memory: str
    capacity_provider_strategy: list[dict[str, str | int]]


class BatchCompute(_Model):
    job_definition: str = Field(min_length=1, description="The job's job definition name.")
    job_queue: str = Field(min_length=1, description="The queue of the job's capacity.")
    on_demand_queue: str = Field(
        min_length=1, description="Where the unit goes when Spot keeps failing it."
    )
    resource_requirements: list[dict[str, str]]


class Unit(_Model):
    index: int = Field(ge=0)
    manifest: int = Field(default=0, ge=0, description="0, or the redrive that planned it.")
    route: Route
    fallback: ContainerRoute
    max_attempts: int = Field(ge=1)
    timeout_seconds: int = Field(ge=1, description="Container time limit for the unit.")
    items: list[Item] = Field(min_length=1)
    ecs: EcsCompute
    batch: BatchCompute
