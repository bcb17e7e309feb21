"""AWS Glue Data Catalog: the stack's database, the jobs' tables and their partitions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from stepburst import aws
from stepburst.adapters.translation import Codes, translated
from stepburst.errors import AwsError, ResourceNotFoundError

if TYPE_CHECKING:
    from types_boto3_glue.type_defs import (
        DatabaseInputTypeDef,
        PartitionInputTypeDef,
        TableInputTypeDef,
    )


class AlreadyExistsError(AwsError):
    """A Glue database, table or partition of that name already exists."""


# https://docs.aws.amazon.com/glue/latest/webapi/API_CreateTable.html (Errors)
_CODES: Codes = {
    "EntityNotFoundException": ResourceNotFoundError,
    "AlreadyExistsException": AlreadyExistsError,
}


def ensure_database(name: str, description: str) -> bool:
    """Create the database unless it exists; True if it was created."""
    database: DatabaseInputTypeDef = {"Name": name, "Description": description}
    try:
        with translated(f"creating Glue database {name}", _CODES):
            aws.client("glue").create_database(DatabaseInput=database)
    except AlreadyExistsError:
        return False
    return True


def delete_database(name: str) -> None:
    try:
        with translated(f"deleting Glue database {name}", _CODES):
            aws.client("glue").delete_database(Name=name)
    except ResourceNotFoundError:
        return


def tables(database: str) -> list[dict[str, Any]]:
    """Every table of the database, with its parameters."""
    found: list[dict[str, Any]] = []
    with translated(f"listing the tables of Glue database {database}", _CODES):
        for page in aws.client("glue").get_paginator("get_tables").paginate(DatabaseName=database):
            found.extend(dict(table) for table in page.get("TableList", []))
    return found


def put_table(database: str, table: TableInputTypeDef) -> None:
    """Create the table, or update it to this definition."""
    glue = aws.client("glue")
    try:
        with translated(f"creating Glue table {database}.{table['Name']}", _CODES):
            glue.create_table(DatabaseName=database, TableInput=table)
    except AlreadyExistsError:
        with translated(f"updating Glue table {database}.{table['Name']}", _CODES):
            glue.update_table(DatabaseName=database, TableInput=table)


def delete_table(database: str, name: str) -> None:
    try:
        with translated(f"deleting Glue table {database}.{name}", _CODES):
            aws.client("glue").delete_table(DatabaseName=database, Name=name)
    except ResourceNotFoundError:
        return


def get_table(database: str, name: str) -> dict[str, Any]:
    with translated(f"reading Glue table {database}.{name}", _CODES):
        return dict(aws.client("glue").get_table(DatabaseName=database, Name=name)["Table"])


def put_partition(
    database: str, table: str, values: Sequence[str], storage: Mapping[str, Any]
) -> None:
    """Register a partition at its location, or move an existing one there."""
    partition: PartitionInputTypeDef = {
        "Values": list(values),
        "StorageDescriptor": dict(storage),  # type: ignore[typeddict-item]
    }
    glue = aws.client("glue")
    try:
        with translated(f"adding partition {list(values)} to {database}.{table}", _CODES):
            glue.create_partition(DatabaseName=database, TableName=table, PartitionInput=partition)
    except AlreadyExistsError:
        with translated(f"updating partition {list(values)} of {database}.{table}", _CODES):
            glue.update_partition(
                DatabaseName=database,
                TableName=table,
                PartitionValueList=list(values),
                PartitionInput=partition,
            )
