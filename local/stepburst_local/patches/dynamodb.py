"""DynamoDB: item operations are atomic, and reads never fail because of concurrent writes.

On AWS each item write is atomic (a condition is checked and the write applied as one step,
an ``ADD`` never loses a concurrent one) and a Query or Scan runs beside any number of writes.
moto keeps a table's items in plain dicts, shared by the server's request threads and the
interpreter's: ``Table.all_items()`` (behind Query and Scan) and ``Table.has_idx_items()``
iterate them while ``Table.put_item`` adds keys, which fails the read with ``RuntimeError:
dictionary changed size during iteration`` (a 500), and ``update_item``'s read-modify-write
interleaves with another's. The engine runs moto's item operations one at a time (one
lock for all tables: an operation takes milliseconds, a Query of a big table tens of them).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from typing import Any

from stepburst_local.binding import current
from stepburst_local.moto_internals import DynamoDBBackend, DynamoHandler
from stepburst_local.patching import Hook, patch

ITEM_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
    "describe_table",
)
"""moto's DynamoDB operations that read or write a table's items, besides get_item
(BatchWriteItem, BatchGetItem and TransactGetItems call put_item, delete_item and get_item per
item). DescribeTable counts the items."""

dynamodb_atomic_items = Hook(
    "dynamodb_atomic_items",
    why="A Query or Scan beside concurrent writes answers 500 on moto (its Table.all_items "
    "iterates the item dict a put_item is growing: 'dictionary changed size during "
    "iteration'), and concurrent update_item ADDs or conditional writes of one item "
    "interleave (lost increments, two winners). moto's item operations run one at a time.",
    upstream="no upstream issue found for DynamoDB (moto's backends are not thread-safe: "
    "getmoto/moto#372)",
)

# Reentrant: TransactWriteItems applies its writes through put_item, update_item, delete_item.
_items_lock = threading.RLock()


def _one_at_a_time(original: Callable[..., Any], self: Any, *args: Any, **kwargs: Any) -> Any:
    with _items_lock:
        return original(self, *args, **kwargs)


for _operation in ITEM_OPERATIONS:
    patch(dynamodb_atomic_items, DynamoDBBackend, _operation)(_one_at_a_time)


@patch(dynamodb_atomic_items, DynamoDBBackend, "get_item")
def _get_item(
    original: Callable[..., Any],
    self: Any,
    table_name: str,
    keys: dict[str, Any],
    projection_expressions: Any = None,
) -> Any:
    # moto answers with the stored item itself and serialises it after this returns: a copy
    # keeps a concurrent update_item from changing it under the serialiser.
    with _items_lock:
        return copy.deepcopy(original(self, table_name, keys, projection_expressions))


dynamodb_throttling = Hook(
    "dynamodb_throttling",
    why="Fault injection: an armed dynamodb_throttle fault answers a DynamoDB call with HTTP "
    "400 ProvisionedThroughputExceededException or ThrottlingException, as DynamoDB does past "
    "a table's capacity; moto never throttles.",
    upstream="no upstream issue found (moto never throttles; this is fault injection)",
)

# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"


@patch(dynamodb_throttling, DynamoHandler, "call_action")
def _call_action(original: Callable[[Any], Any], self: Any) -> Any:
    bindings = current()
    if bindings is not None:
        code = bindings.faults.take_dynamodb_throttle(str(self._get_action()))
        if code is not None:
            body = {
                "__type": _ERROR_PREFIX + code,
                "message": "The level of configured provisioned throughput for the table was "
                "exceeded. Consider increasing your provisioning level with the UpdateTable API.",
            }
            return 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(body)
    return original(self)


HOOKS = (dynamodb_atomic_items, dynamodb_throttling)
