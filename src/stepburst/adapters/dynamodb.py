"""DynamoDB: one table, read and written in plain Python values.

Values are converted both ways here: floats become ``Decimal`` on the way in (DynamoDB numbers),
whole ``Decimal``s come back as ``int`` and the rest as ``float``; ``None`` attributes are left
out, since DynamoDB cannot index them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from stepburst import aws
from stepburst.adapters.translation import Codes, translated
from stepburst.errors import AwsError, ConditionFailedError, ResourceNotFoundError, ThrottledError

if TYPE_CHECKING:
    from types_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        KeysAndAttributesUnionTypeDef,
        QueryInputPaginateTypeDef,
        WriteRequestTypeDef,
        WriteRequestUnionTypeDef,
    )

# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/CommonErrors.html and each
# operation's page; throttling and access codes are the shared ones.
_CODES: Codes = {
    "ConditionalCheckFailedException": ConditionFailedError,
    "ResourceNotFoundException": ResourceNotFoundError,
}
# BatchWriteItem and BatchGetItem take at most 25 puts and 100 keys a request.
BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
# TransactWriteItems takes at most 100 actions and 4 MB of items a request:
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
TRANSACT_WRITE_LIMIT = 100
TRANSACT_WRITE_BYTES = 4 * 1024 * 1024
# Reasons a transaction was cancelled that pass: another write to one of its items at the same
# moment, or throttling. It is sent again, up to this many times.
_PASSING_CANCELS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
_TRANSACT_ATTEMPTS = 10
# Back-off while DynamoDB hands back unprocessed items (it does when it throttles a batch).
_FIRST_DELAY = 0.05
_MAX_DELAY = 2.0

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
Record = dict[str, Any]


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


def marshal(record: Mapping[str, Any]) -> dict[str, AttributeValueTypeDef]:
    """A record as DynamoDB's typed attribute values."""
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in record.items() if v is not None}


def _cancellation_reasons(error: AwsError) -> list[Mapping[str, Any]] | None:
    """A cancelled transaction's reasons, one per action in order; None for other errors."""
    cause = error.__cause__
    if error.code != "TransactionCanceledException" or not isinstance(cause, ClientError):
        return None
    reasons = cause.response.get("CancellationReasons")
    return list(reasons) if isinstance(reasons, list) else None


def unmarshal(record: Mapping[str, Any]) -> Record:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in record.items()}


class Table:
    """One DynamoDB table. Every failure is a domain error; a failed condition is
    :class:`~stepburst.errors.ConditionFailedError`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def put(
        self,
        record: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        request: dict[str, Any] = {"TableName": self.name, "Item": marshal(record)}
        if condition is not None:
            request["ConditionExpression"] = condition
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if values:
            request["ExpressionAttributeValues"] = marshal(values)
        with translated(f"writing to table {self.name}", _CODES):
            aws.client("dynamodb").put_item(**request)

    def update(
        self,
        key: Mapping[str, Any],
        *,
        update: str,
        names: Mapping[str, str],
        values: Mapping[str, Any],
        condition: str,
    ) -> None:
        with translated(f"updating a record of table {self.name}", _CODES):
            aws.client("dynamodb").update_item(
                TableName=self.name,
                Key=marshal(key),
                UpdateExpression=update,
                ExpressionAttributeNames=dict(names),
                ExpressionAttributeValues=marshal(values),
                ConditionExpression=condition,
            )

    def get(self, key: Mapping[str, Any]) -> Record | None:
        """The record with this key, read consistently, or None."""
        with translated(f"reading from table {self.name}", _CODES):
            response = aws.client("dynamodb").get_item(
                TableName=self.name, Key=marshal(key), ConsistentRead=True
            )
        found = response.get("Item")
        return unmarshal(found) if found else None

    def get_many(self, keys: Iterable[Mapping[str, Any]]) -> list[Record]:
        """The records with these keys that exist, read consistently, in no particular order."""
        wanted = [marshal(key) for key in keys]
        found: list[Record] = []
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            # What DynamoDB leaves over comes back in the request's own shape, to send again.
            pending: Mapping[str, KeysAndAttributesUnionTypeDef] = {
                self.name: {
                    "Keys": wanted[start : start + BATCH_GET_LIMIT],
                    "ConsistentRead": True,
                }
            }
            delay = _FIRST_DELAY
            while pending:
                with translated(f"reading from table {self.name}", _CODES):
                    response = aws.client("dynamodb").batch_get_item(RequestItems=pending)
                found.extend(unmarshal(r) for r in response["Responses"].get(self.name, []))
                pending = response.get("UnprocessedKeys") or {}
                if pending:
                    time.sleep(delay)
                    delay = min(delay * 2, _MAX_DELAY)
        return found

    def put_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Write whole records, 25 to a request, resending what DynamoDB leaves over."""
        requests: list[WriteRequestTypeDef] = [
            {"PutRequest": {"Item": marshal(record)}} for record in records
        ]
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending: Mapping[str, Sequence[WriteRequestUnionTypeDef]] = {
                self.name: requests[start : start + BATCH_WRITE_LIMIT]
            }
            delay = _FIRST_DELAY
            while pending:
                with translated(f"writing to table {self.name}", _CODES):
                    response = aws.client("dynamodb").batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if pending:
                    time.sleep(delay)
                    delay = min(delay * 2, _MAX_DELAY)

    def put_many_where(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        condition: str,
        names: Mapping[str, str],
        values: Mapping[str, Any],
    ) -> set[int]:
        """Write whole records, each only where ``condition`` holds for the record it replaces;
        the positions (in ``records``) of those it did not hold for, which are left as they are.

        The records go in transactions of up to 100 (and 4 MB): one request instead of one
        conditional PutItem a record. A transaction is all or nothing, so one whose condition
        fails for some records is sent again without them. Each record is its own item (the
        keys differ). A transactional write costs two write units per KB, a PutItem one:
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
        """
        expression: dict[str, Any] = {
            "ConditionExpression": condition,
            "ExpressionAttributeNames": dict(names),
            "ExpressionAttributeValues": marshal(values),
        }
        refused: set[int] = set()
        group: list[tuple[int, dict[str, Any]]] = []
        group_bytes = 0
        for position, record in enumerate(records):
            item = marshal(record)
            # More than DynamoDB counts (it adds no JSON), so a group stays within the limit.
            size = len(json.dumps(item, separators=(",", ":"), default=str))
            if group and (
                len(group) == TRANSACT_WRITE_LIMIT or group_bytes + size > TRANSACT_WRITE_BYTES
            ):
                refused |= self._transact_puts(group, expression)
                group, group_bytes = [], 0
            group.append((position, item))
            group_bytes += size
        if group:
            refused |= self._transact_puts(group, expression)
        return refused

    def _transact_puts(
        self, group: list[tuple[int, dict[str, Any]]], expression: Mapping[str, Any]
    ) -> set[int]:
        refused: set[int] = set()
        delay = _FIRST_DELAY
        for _ in range(_TRANSACT_ATTEMPTS):
            if not group:
                return refused
            try:
                with translated(f"writing to table {self.name}", _CODES):
                    aws.client("dynamodb").transact_write_items(
                        TransactItems=[
                            {
                                "Put": {
                                    "TableName": self.name,
                                    "Item": item,
                                    "ConditionExpression": expression["ConditionExpression"],
                                    "ExpressionAttributeNames": expression[
                                        "ExpressionAttributeNames"
                                    ],
                                    "ExpressionAttributeValues": expression[
                                        "ExpressionAttributeValues"
                                    ],
                                }
                            }
                            for _, item in group
                        ]
                    )
            except AwsError as error:
                reasons = _cancellation_reasons(error)
                if reasons is None or len(reasons) != len(group):
                    raise
                codes = [str(reason.get("Code") or "None") for reason in reasons]
                unknown = set(codes) - {"None", "ConditionalCheckFailed"} - _PASSING_CANCELS
                if unknown:
                    raise
                refused |= {
                    position
                    for (position, _), code in zip(group, codes, strict=True)
                    if code == "ConditionalCheckFailed"
                }
                group = [
                    entry
                    for entry, code in zip(group, codes, strict=True)
                    if code != "ConditionalCheckFailed"
                ]
                if any(code in _PASSING_CANCELS for code in codes):
                    time.sleep(delay)
                    delay = min(delay * 2, _MAX_DELAY)
                continue
            return refused
        raise ThrottledError(
            f"writing to table {self.name}: a transaction of {len(group)} records was "
            f"cancelled {_TRANSACT_ATTEMPTS} times by conflicting writes or throttling",
            code="TransactionCanceledException",
        )

    def query(
        self,
        key_condition: str,
        values: Mapping[str, Any],
        *,
        names: Mapping[str, str] | None = None,
        index: str | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> Iterator[Record]:
        """Records matching ``key_condition``, a page at a time; consistent unless on an index
        (global secondary indexes cannot be read consistently)."""
        request: QueryInputPaginateTypeDef = {
            "TableName": self.name,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": marshal(values),
            "ScanIndexForward": not newest_first,
        }
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if index is None:
            request["ConsistentRead"] = True
        else:
            request["IndexName"] = index
        if limit is not None:
            request["PaginationConfig"] = {"MaxItems": limit}
        with translated(f"querying table {self.name}", _CODES):
            pages = aws.client("dynamodb").get_paginator("query").paginate(**request)
            for page in pages:
                for record in page["Items"]:
                    yield unmarshal(record)
