"""Glue tables over the jobs' outputs (``output.table``), for Athena.

Tables follow the job files on every deploy (the ``JobTables`` custom resource): each table a
job declares is created or updated in the stack's database, and a table stepburst made for a
job that no longer declares one is dropped. Each successful run then registers its partition
(Finalize), so a day's outputs are queryable as soon as its run ends.

Partitions are registered rather than projected: enabling partition projection makes Athena
ignore every registered partition, and projection needs each variable's range declared in
advance, while a run's partition values are whatever it was started with.
https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepburst.adapters import glue
from stepburst.errors import JobSpecError, StepburstError
from stepburst.jobs import Job
from stepburst.jobs.output_keys import table_location
from stepburst.observability import logger

if TYPE_CHECKING:
    from types_boto3_glue.type_defs import StorageDescriptorTypeDef, TableInputTypeDef

MANAGED = "stepburst:job"

# Input and output formats and SerDes as Athena reads each format:
# https://docs.aws.amazon.com/athena/latest/ug/avro-serde.html (AvroSerDe; Athena takes the
# schema from avro.schema.literal and refuses avro.schema.url),
# https://docs.aws.amazon.com/athena/latest/ug/parquet-serde.html,
# https://docs.aws.amazon.com/athena/latest/ug/openx-json-serde.html
_FORMATS: dict[str, dict[str, str]] = {
    "avro": {
        "input": "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
        "output": "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat",
        "serde": "org.apache.hadoop.hive.serde2.avro.AvroSerDe",
    },
    "parquet": {
        "input": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "output": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "serde": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    },
    "jsonl": {
        "input": "org.apache.hadoop.mapred.TextInputFormat",
        "output": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "serde": "org.openx.data.jsonserde.JsonSerDe",
    },
}
_AVRO_PRIMITIVES = {
    "string": "string",
    "int": "int",
    "long": "bigint",
    "float": "float",
    "double": "double",
    "boolean": "boolean",
    "bytes": "binary",
}


class TableError(StepburstError):
    """A job's table cannot be described to Glue."""


def avro_columns(schema: Mapping[str, Any], field: str) -> list[dict[str, str]]:
    """The Hive columns of an Avro record schema (its top-level fields)."""
    if schema.get("type") != "record":
        raise JobSpecError(field, "(schema)", "an Avro table's schema is a record")
    named: dict[str, str] = {}
    return [
        {"Name": str(f["name"]).lower(), "Type": _hive_type(f["type"], named, field)}
        for f in schema.get("fields", [])
    ]


def _hive_type(avro: Any, named: dict[str, str], field: str) -> str:
    if isinstance(avro, list):
        # A union with null is its other type, nullable as every Hive column is.
        others = [branch for branch in avro if branch != "null"]
        if len(others) != 1:
            raise JobSpecError(field, "(schema)", f"a union of {others} has no Hive type")
        return _hive_type(others[0], named, field)
    if isinstance(avro, str):
        if avro in _AVRO_PRIMITIVES:
            return _AVRO_PRIMITIVES[avro]
        if avro in named:
            return named[avro]
        raise JobSpecError(field, "(schema)", f"type {avro!r} is not defined before its use")
    kind = avro.get("type")
    if kind in _AVRO_PRIMITIVES:
        return _AVRO_PRIMITIVES[str(kind)]
    if kind == "record":
        members = ",".join(
            f"{str(f['name']).lower()}:{_hive_type(f['type'], named, field)}"
            for f in avro.get("fields", [])
        )
        hive = f"struct<{members}>"
    elif kind == "array":
        hive = f"array<{_hive_type(avro['items'], named, field)}>"
    elif kind == "map":
        hive = f"map<string,{_hive_type(avro['values'], named, field)}>"
    elif kind == "enum":
        hive = "string"
    elif kind == "fixed":
        hive = "binary"
    else:
        raise JobSpecError(field, "(schema)", f"Avro type {kind!r} has no Hive type")
    if "name" in avro:
        named[str(avro["name"])] = hive
        if "namespace" in avro:
            named[f"{avro['namespace']}.{avro['name']}"] = hive
    return hive


def table_input(job: Job, bucket: str, jobs_dir: Path) -> TableInputTypeDef:
    """The Glue definition of a job's table."""
    table = job.output.table
    key = job.output.key
    if table is None or key is None:
        raise TableError(f"job {job.name!r} declares no table")
    source = f"{job.name}.yaml"
    parameters = {"classification": table.format, "EXTERNAL": "TRUE", MANAGED: job.name}
    serde_parameters: dict[str, str] = {}
    if table.schema_file is not None:
        path = (jobs_dir / table.schema_file).resolve()
        if jobs_dir.resolve() not in path.parents or not path.is_file():
            raise JobSpecError(
                source, "output.table.schema_file", f"no {table.schema_file} in jobs/"
            )
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise JobSpecError(source, "output.table.schema_file", f"not JSON: {exc}") from exc
        columns = avro_columns(schema, source)
        literal = json.dumps(schema, separators=(",", ":"))
        serde_parameters["avro.schema.literal"] = literal
        parameters["avro.schema.literal"] = literal
    else:
        columns = [
            {"Name": column.name, "Type": column.type, "Comment": column.comment}
            for column in table.columns
        ]
    formats = _FORMATS[table.format]
    storage: StorageDescriptorTypeDef = {
        "Columns": columns,  # type: ignore[typeddict-item]
        "Location": f"s3://{bucket}/{table_location(key)}",
        "InputFormat": formats["input"],
        "OutputFormat": formats["output"],
        "SerdeInfo": {"SerializationLibrary": formats["serde"], "Parameters": serde_parameters},
    }
    return {
        "Name": table.name,
        "Description": table.description or f"Outputs of the stepburst job {job.name}.",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "PartitionKeys": [{"Name": name.lower(), "Type": "string"} for name in table.partition_by],
        "StorageDescriptor": storage,
    }


def sync(jobs: Iterable[Job], database: str, bucket: str, jobs_dir: Path) -> dict[str, str]:
    """Make the database hold exactly the tables the jobs declare (and any tables of its own
    that stepburst did not make)."""
    glue.ensure_database(database, "Tables over the outputs of stepburst jobs.")
    declared = {}
    for job in jobs:
        if job.output.table is not None:
            definition = table_input(job, bucket, jobs_dir)
            glue.put_table(database, definition)
            declared[definition["Name"]] = job.name
    dropped = [
        str(table["Name"])
        for table in glue.tables(database)
        if (table.get("Parameters") or {}).get(MANAGED) and table["Name"] not in declared
    ]
    for name in dropped:
        glue.delete_table(database, name)
    logger.info("tables synced", extra={"tables": sorted(declared), "dropped": dropped})
    return {"Tables": ",".join(sorted(declared)), "Dropped": ",".join(dropped)}


def remove_all(database: str) -> dict[str, str]:
    """On stack deletion: drop the tables stepburst made, and the database if it is empty."""
    existing = glue.tables(database)
    managed = [t for t in existing if (t.get("Parameters") or {}).get(MANAGED)]
    for table in managed:
        glue.delete_table(database, str(table["Name"]))
    if len(managed) == len(existing):
        glue.delete_database(database)
    return {"Dropped": ",".join(str(t["Name"]) for t in managed)}


def register_partition(
    job: Job, database: str, bucket: str, run_prefix: str, values: Mapping[str, str]
) -> list[str]:
    """Register a run's partition at its folder; the partition's values."""
    table = job.output.table
    if table is None:
        raise TableError(f"job {job.name!r} declares no table")
    partition = [str(values[name]) for name in table.partition_by]
    storage = dict(glue.get_table(database, table.name)["StorageDescriptor"])
    storage["Location"] = f"s3://{bucket}/{run_prefix}"
    glue.put_partition(database, table.name, partition, storage)
    return partition
