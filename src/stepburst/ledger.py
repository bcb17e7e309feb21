"""The DynamoDB ledger: one record per run, one per item, one per trigger.

Single-table layout (keys ``pk``/``sk``)::

    RUN#<run id>      RUN           the run: job, trigger, status, counts, timings
    RUN#<run id>      ITEM#<index>  an item: status, route, attempts, exit code, stats
    RUN#<run id>      UNIT#<m>#<u>  a digest of every item of unit u of manifest m (0, or the
                                    redrive's number), written when a worker finishes it
    TRIGGER#<id>      TRIGGER       a claimed (or ignored) trigger delivery

Only run records carry ``job`` and ``started_at``, so the sparse ``ByJob`` index lists runs
and nothing else. Items are written per unit in batches, never once per record; Finalize reads
one digest per unit instead of every item.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from stepburst import aws
from stepburst.errors import ThrottledError

RUN_SK = "RUN"
TRIGGER_SK = "TRIGGER"
ITEM_PREFIX = "ITEM#"
UNIT_PREFIX = "UNIT#"
# What a digest keeps of an item: enough to aggregate a run and name its failures.
DIGEST_FIELDS = (
    "item",
    "status",
    "route",
    "error",
    "exit_code",
    "reason",
    "lines",
    "records",
    "rejects",
    "filtered",
    "bytes_in",
    "bytes_out",
    "duration_seconds",
    "rejects_key",
)
_REASON_LIMIT = 500
BY_JOB_INDEX = "ByJob"
_BATCH_WRITE_LIMIT = 25
_BATCH_GET_LIMIT = 100
_THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


def unit_sort_key(manifest: int, unit: int) -> str:
    return f"{UNIT_PREFIX}{manifest:04d}#{unit:07d}"


def _failure(record: Mapping[str, Any]) -> dict[str, Any]:
    """The state machine's failure document of an item (a JSON string), if it has one."""
    failure = record.get("failure")
    if isinstance(failure, str):
        try:
            parsed = json.loads(failure)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def item_digest(record: Mapping[str, Any]) -> dict[str, Any]:
    """An item record reduced to what a run's aggregate needs."""
    failure = _failure(record)
    exit_code = record.get("exit_code", failure.get("exit_code"))
    reason = failure.get("Cause") or failure.get("Error") or record.get("cause")
    digest = {
        **{name: record.get(name) for name in DIGEST_FIELDS},
        "exit_code": int(exit_code) if isinstance(exit_code, int | float) else None,
        "reason": str(reason)[:_REASON_LIMIT] if reason else None,
    }
    return {name: value for name, value in digest.items() if value is not None}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def _marshal(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in record.items() if v is not None}


def _unmarshal(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in record.items()}


def _translate(error: Exception) -> Exception:
    if aws.error_code(error) in _THROTTLING_CODES:
        return ThrottledError(str(error))
    return error


class Ledger:
    def __init__(self, table_name: str, retention_days: int) -> None:
        self.table_name = table_name
        self.retention_days = retention_days

    @property
    def _ddb(self) -> Any:
        return aws.client("dynamodb")

    def _expires_at(self) -> int:
        return int(time.time()) + self.retention_days * 86400

    # -- triggers ---------------------------------------------------------------------------

    def claim_trigger(self, trigger_id: str, run_id: str, details: Mapping[str, Any]) -> bool:
        """Claim a trigger for ``run_id``; False if an earlier delivery already claimed it."""
        record = {
            "pk": f"TRIGGER#{trigger_id}",
            "sk": TRIGGER_SK,
            "status": "CLAIMED",
            "run_id": run_id,
            "claimed_at": now_iso(),
            "expires_at": self._expires_at(),
            **details,
        }
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item=_marshal(record),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if aws.error_code(error) == "ConditionalCheckFailedException":
                return False
            raise _translate(error) from error
        return True

    def record_ignored_trigger(self, trigger_id: str, details: Mapping[str, Any]) -> None:
        record = {
            "pk": f"TRIGGER#{trigger_id}",
            "sk": TRIGGER_SK,
            "status": "IGNORED",
            "claimed_at": now_iso(),
            "expires_at": self._expires_at(),
            **details,
        }
        try:
            self._ddb.put_item(TableName=self.table_name, Item=_marshal(record))
        except ClientError as error:
            raise _translate(error) from error

    def get_trigger(self, trigger_id: str) -> dict[str, Any] | None:
        return self._get(f"TRIGGER#{trigger_id}", TRIGGER_SK)

    # -- runs -------------------------------------------------------------------------------

    def create_run(self, run: Mapping[str, Any]) -> None:
        record = {
            "pk": run_pk(str(run["run_id"])),
            "sk": RUN_SK,
            "expires_at": self._expires_at(),
            **run,
        }
        try:
            self._ddb.put_item(TableName=self.table_name, Item=_marshal(record))
        except ClientError as error:
            raise _translate(error) from error

    def update_run(self, run_id: str, changes: Mapping[str, Any]) -> None:
        """Set the given fields of a run record; fields given as None are left alone."""
        present = [(name, value) for name, value in changes.items() if value is not None]
        names = {f"#f{i}": name for i, (name, _) in enumerate(present)}
        values = {f":v{i}": value for i, (_, value) in enumerate(present)}
        assignments = ", ".join(f"#f{i} = :v{i}" for i in range(len(present)))
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=_marshal({"pk": run_pk(run_id), "sk": RUN_SK}),
                UpdateExpression=f"SET {assignments}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_marshal(values),
                ConditionExpression="attribute_exists(pk)",
            )
        except ClientError as error:
            raise _translate(error) from error

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self._get(run_pk(run_id), RUN_SK)

    def list_runs(self, job: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The newest runs of ``job`` first."""
        pages = (
            aws.client("dynamodb")
            .get_paginator("query")
            .paginate(
                TableName=self.table_name,
                IndexName=BY_JOB_INDEX,
                KeyConditionExpression="#job = :job",
                ExpressionAttributeNames={"#job": "job"},
                ExpressionAttributeValues=_marshal({":job": job}),
                ScanIndexForward=False,
                PaginationConfig={"MaxItems": limit},
            )
        )
        return [_unmarshal(record) for page in pages for record in page["Items"]]

    # -- items ------------------------------------------------------------------------------

    def get_items(self, run_id: str, sort_keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Item records by sort key, for the keys that exist."""
        keys = list(dict.fromkeys(sort_keys))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            pending: dict[str, Any] = {
                self.table_name: {
                    "Keys": [
                        _marshal({"pk": run_pk(run_id), "sk": sk})
                        for sk in keys[start : start + _BATCH_GET_LIMIT]
                    ],
                    "ConsistentRead": True,
                }
            }
            while pending:
                try:
                    response = self._ddb.batch_get_item(RequestItems=pending)
                except ClientError as error:
                    raise _translate(error) from error
                for record in response["Responses"].get(self.table_name, []):
                    item = _unmarshal(record)
                    found[item["sk"]] = item
                pending = response.get("UnprocessedKeys") or {}
        return found

    def put_items(self, run_id: str, records: Iterable[Mapping[str, Any]]) -> None:
        """Write whole item records, 25 to a request, resending what DynamoDB leaves over."""
        expires_at = self._expires_at()
        requests = [
            {
                "PutRequest": {
                    "Item": _marshal(
                        {"pk": run_pk(run_id), "run_id": run_id, "expires_at": expires_at, **r}
                    )
                }
            }
            for r in records
        ]
        for start in range(0, len(requests), _BATCH_WRITE_LIMIT):
            pending: dict[str, Any] = {
                self.table_name: requests[start : start + _BATCH_WRITE_LIMIT]
            }
            delay = 0.05
            while pending:
                try:
                    response = self._ddb.batch_write_item(RequestItems=pending)
                except ClientError as error:
                    raise _translate(error) from error
                pending = response.get("UnprocessedItems") or {}
                if pending:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)

    def iter_items(self, run_id: str) -> Iterator[dict[str, Any]]:
        return self._query_prefix(run_id, ITEM_PREFIX)

    def put_unit_digest(
        self, run_id: str, manifest: int, unit: int, digests: Iterable[Mapping[str, Any]]
    ) -> None:
        self.put_items(
            run_id,
            [
                {
                    "sk": unit_sort_key(manifest, unit),
                    "manifest": manifest,
                    "unit": unit,
                    # One attribute, however many items: a unit's digest is read as a whole.
                    "items": json.dumps(list(digests), separators=(",", ":")),
                }
            ],
        )

    def unit_digests(self, run_id: str) -> dict[tuple[int, int], list[dict[str, Any]]]:
        """Each unit's item digests, by (manifest, unit)."""
        return {
            (int(record["manifest"]), int(record["unit"])): json.loads(record["items"])
            for record in self._query_prefix(run_id, UNIT_PREFIX)
        }

    def _query_prefix(self, run_id: str, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = aws.client("dynamodb").get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=_marshal({":pk": run_pk(run_id), ":prefix": prefix}),
            ConsistentRead=True,
        )
        for page in pages:
            for record in page["Items"]:
                yield _unmarshal(record)

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        try:
            response = self._ddb.get_item(
                TableName=self.table_name,
                Key=_marshal({"pk": pk, "sk": sk}),
                ConsistentRead=True,
            )
        except ClientError as error:
            raise _translate(error) from error
        record = response.get("Item")
        return _unmarshal(record) if record else None
