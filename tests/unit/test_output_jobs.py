"""Job-file checks of combine, output.key, output.replace and output.table: each error names
its field."""

from __future__ import annotations

from typing import Any

import pytest

from stepburst.errors import JobSpecError
from stepburst.jobs import parse_job

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = {
    "name": "counts",
    "split": {"date": {}},
    "run": {"function": "m:f"},
    "output": {"key": "counts/date={date}/"},
}


def with_changes(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


@pytest.mark.parametrize(
    ("document", "field", "problem"),
    [
        (with_changes(combine={}), "combine", "should be non-empty"),
        (
            with_changes(combine={"function": "m:f", "command": "x"}),
            "combine",
            "exactly one of function, command or steps",
        ),
        (with_changes(combine={"function": "m:f", "platform": "batch"}), "combine.platform", ""),
        (with_changes(output={"prefix": "a/", "key": "b/"}), "output", "exactly one of prefix"),
        (with_changes(output={"key": "a/{nope}/"}), "output.key", "{nope} is not a variable"),
        (with_changes(output={"key": "/a/"}), "output.key", "does not match"),
        (with_changes(output={"key": "a/{date}"}), "output.key", "does not match"),
        (
            with_changes(output={"key": "a/{run_id}/", "replace": True}),
            "output.replace",
            "nothing to replace",
        ),
        (with_changes(output={"prefix": "a/", "replace": True}), "output", "replace needs a key"),
        (
            with_changes(
                output={
                    "key": "a/{item}/",
                    "table": {
                        "name": "t",
                        "format": "jsonl",
                        "columns": [{"name": "c", "type": "string"}],
                        "partition_by": ["item"],
                    },
                }
            ),
            "output.table.partition_by",
            "'item' must be a variable of output.key before any {item} folder",
        ),
        (
            with_changes(
                output={
                    "key": "a/date={date}/",
                    "table": {
                        "name": "t",
                        "format": "jsonl",
                        "columns": [{"name": "c", "type": "string"}],
                        "partition_by": ["job"],
                    },
                }
            ),
            "output.table.partition_by",
            "'job' must be a variable of output.key",
        ),
        (
            with_changes(output={"key": "a/{date}/", "table": {"name": "t", "format": "parquet"}}),
            "output.table",
            "give columns",
        ),
        (
            with_changes(
                output={
                    "key": "a/{date}/",
                    "table": {"name": "t", "format": "jsonl", "schema_file": "a.avsc"},
                }
            ),
            "output.table",
            "schema_file is for avro",
        ),
        (
            with_changes(
                output={
                    "key": "a/{date}/",
                    "table": {"name": "Bad-Name", "format": "avro", "schema_file": "a.avsc"},
                }
            ),
            "output.table.name",
            "does not match",
        ),
    ],
)
def test_errors_name_the_field(document: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(JobSpecError) as raised:
        parse_job(document, "counts.yaml")
    assert raised.value.field == field, str(raised.value)
    assert problem in str(raised.value)


def test_a_key_with_params_and_a_table_is_accepted() -> None:
    job = parse_job(
        with_changes(
            params={"REGION": "eu"},
            combine={"command": "python -m total {COMBINE_MANIFEST}"},
            output={
                "key": "counts/region={REGION}/date={date}/{item}/",
                "replace": True,
                "table": {
                    "name": "counts",
                    "format": "avro",
                    "schema_file": "counts.avsc",
                    "partition_by": ["REGION", "date"],
                },
            },
        ),
        "counts.yaml",
    )
    assert job.combine is not None
    assert job.output.table is not None
    assert job.output.table.partition_by == ["REGION", "date"]
