"""DynamoDB: item operations are atomic, and reads never fail because of concurrent writes.

On AWS each item write is atomic (a condition is checked and the write applied as one step,
an ``ADD`` never loses a concurrent one) and a Query or Scan runs beside any number of writes.
moto keeps a table's items in plain dicts, shared by the server's request threads and the
interpreter's: ``Table.all_items()`` (behind Query and Scan) and ``Table.has_idx_items()``
iterate them while ``Table.put_item`` adds keys, which fails the read with ``RuntimeError:
dictionary changed size during iteration`` (a 500), and ``update_item``'s read-modify-write
interleaves with another's. The engine runs moto's item operations one at a time (one
lock for all tables: an operation takes milliseconds, a Query of a big table tens of them).

A Query on AWS reads one partition, from its start key on, and costs what it returns. moto's
``Table.query`` sorts every item of the table on every page and walks the pages before the
one asked for, so reading a 100,000-item run page by page grows with the square of the table.
The engine hands moto's query only the items of the partition asked for, from the page's start
key (and a ``begins_with`` prefix) on, as many as one page can hold; moto still applies every
condition, filter, projection and page limit itself.
"""

from __future__ import annotations

import bisect
import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stepburst_local.binding import current
from stepburst_local.moto_internals import (
    DYNAMODB_RESULT_SIZE_LIMIT,
    BaseJSONSerializer,
    DynamoDBBackend,
    DynamoDBItem,
    DynamoDBTable,
    DynamoHandler,
    DynamoType,
    ItemSizeTooLarge,
    LimitedSizeDict,
    dynamodb_bytesize,
    dynamodb_comparisons,
    dynamodb_models,
    dynamodb_table,
)
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

READ_OPERATIONS = frozenset({"query", "scan", "describe_table"})

# Reentrant: TransactWriteItems applies its writes through put_item, update_item, delete_item.
_items_lock = threading.RLock()
# Bumped by every write: a partition's sorted keys are reused only while nothing was written.
_writes = 0


def _one_at_a_time(original: Callable[..., Any], self: Any, *args: Any, **kwargs: Any) -> Any:
    global _writes  # noqa: PLW0603 - one counter for the one lock
    with _items_lock:
        _writes += 1
        return original(self, *args, **kwargs)


def _read_at_a_time(original: Callable[..., Any], self: Any, *args: Any, **kwargs: Any) -> Any:
    with _items_lock:
        return original(self, *args, **kwargs)


for _operation in ITEM_OPERATIONS:
    patch(dynamodb_atomic_items, DynamoDBBackend, _operation)(
        _read_at_a_time if _operation in READ_OPERATIONS else _one_at_a_time
    )


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


dynamodb_partition_query = Hook(
    "dynamodb_partition_query",
    why="moto's Table.query sorts every item of the table for every page and re-walks the "
    "pages before the one asked for, so a Query of a large partition (a 100,000-item run) "
    "takes minutes; on AWS a Query reads one partition from its start key. The query is "
    "given only the partition's items from the start key (and begins_with prefix) on, "
    "as many as fit one page.",
    upstream="no upstream issue found (moto's Table.query filters Table.all_items())",
)


@dataclass(frozen=True)
class _SortedPartition:
    writes: int
    values: list[Any]
    """The partition's sort key values, in order (what bisect searches)."""
    keys: list[Any]
    """The DynamoType sort keys in the same order (what the partition's dict is keyed by)."""


_sorted_partitions: dict[tuple[int, Any], _SortedPartition] = {}


def _sorted_partition(table: Any, hash_key: Any, partition: dict[Any, Any]) -> _SortedPartition:
    cache_key = (id(table), hash_key)
    cached = _sorted_partitions.get(cache_key)
    if cached is not None and cached.writes == _writes:
        return cached
    keys = sorted(partition, key=lambda key: key.cast_value)
    cached = _SortedPartition(_writes, [key.cast_value for key in keys], keys)
    if len(_sorted_partitions) > 1024:  # forget tables and partitions long gone
        _sorted_partitions.clear()
    _sorted_partitions[cache_key] = cached
    return cached


class _PartitionView:
    """A table as moto's query sees it: only the candidate items, the rest delegated."""

    def __init__(self, table: Any, candidates: list[Any]) -> None:
        self._table = table
        self._candidates = candidates

    def all_items(self) -> list[Any]:
        return self._candidates

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def _candidates(
    table: Any,
    hash_key: Any,
    *,
    range_comparison: str | None,
    range_objs: list[Any],
    limit: int | None,
    exclusive_start_key: dict[str, Any] | None,
    forward: bool,
) -> list[Any]:
    """The partition's items a page can reach, in sort key order."""
    partition = table.items.get(hash_key)
    if not partition:
        return []
    ordered = _sorted_partition(table, hash_key, partition)
    if not forward or (range_comparison and range_comparison.upper() != "BEGINS_WITH"):
        return [partition[key] for key in ordered.keys]
    prefix = range_objs[0].cast_value if range_comparison else None
    start = 0
    if isinstance(prefix, str):
        start = bisect.bisect_left(ordered.values, prefix)
    if exclusive_start_key and table.range_key_attr in exclusive_start_key:
        after = DynamoType(exclusive_start_key[table.range_key_attr]).cast_value
        # The start key itself stays: moto's query skips it as it always has.
        start = max(start, bisect.bisect_left(ordered.values, after))
    candidates: list[Any] = []
    size = 0
    for index in range(start, len(ordered.keys)):
        value = ordered.values[index]
        if isinstance(prefix, str) and not (isinstance(value, str) and value.startswith(prefix)):
            break
        item = partition[ordered.keys[index]]
        candidates.append(item)
        size += item.size()
        # One more than a page holds, so that moto sees there is a next page.
        if size > 2 * DYNAMODB_RESULT_SIZE_LIMIT or (limit and len(candidates) > limit + 1):
            break
    return candidates


@patch(dynamodb_partition_query, DynamoDBTable, "query")
def _query(  # noqa: PLR0917 - moto's signature
    original: Callable[..., Any],
    self: Any,
    hash_key: Any,
    range_comparison: str | None,
    range_objs: list[Any],
    limit: int,
    exclusive_start_key: dict[str, Any],
    scan_index_forward: bool,
    projection_expressions: Any,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: Any = None,
    range_key_conditions: Any = None,
    **filter_kwargs: Any,
) -> Any:
    arguments = (
        hash_key,
        range_comparison,
        range_objs,
        limit,
        exclusive_start_key,
        scan_index_forward,
        projection_expressions,
        index_name,
        consistent_read,
        filter_expression,
    )
    keywords = {
        "hash_key_conditions": hash_key_conditions,
        "range_key_conditions": range_key_conditions,
        **filter_kwargs,
    }
    simple = (
        index_name is None
        and hash_key is not None
        and self.range_key_attr
        and not filter_kwargs
        and len(range_key_conditions or ()) <= 1
    )
    if not simple:
        return original(self, *arguments, **keywords)
    view = _PartitionView(
        self,
        _candidates(
            self,
            hash_key,
            range_comparison=range_comparison,
            range_objs=range_objs,
            limit=limit,
            exclusive_start_key=exclusive_start_key,
            forward=scan_index_forward is not False,
        ),
    )
    return original(view, *arguments, **keywords)


dynamodb_wire_values = Hook(
    "dynamodb_wire_values",
    why="moto serialises every response through botocore's shapes, member by member of each "
    "attribute value (ten members, each looked up under several aliases): a BatchGetItem of "
    "100 item records takes ~0.5 s, the Lambda unit's read of its items. An attribute value "
    "moto has turned into a dict is already in DynamoDB's JSON wire form, and is copied as "
    "it is; one holding binary (B, BS: bytes, base64-encoded by moto's serialiser) or "
    "anything unexpected still goes through moto's serialiser.",
    upstream="no upstream issue found (moto 5.2's shape-driven ResponseSerializer)",
)

_STRINGS = frozenset({"S", "N"})
_FLAGS = frozenset({"BOOL", "NULL"})
_STRING_SETS = frozenset({"SS", "NS"})


def _wire_ready(value: Any) -> bool:
    """Whether an attribute value is DynamoDB's JSON as it is: one type key, plain JSON in."""
    if type(value) is not dict or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in _STRINGS:
        return type(inner) is str
    if kind in _FLAGS:
        return type(inner) is bool
    if kind in _STRING_SETS:
        return type(inner) is list and all(type(each) is str for each in inner)
    if kind == "M":
        return type(inner) is dict and all(_wire_ready(each) for each in inner.values())
    if kind == "L":
        return type(inner) is list and all(_wire_ready(each) for each in inner)
    return False


@patch(dynamodb_wire_values, BaseJSONSerializer, "_serialize_type_map")
def _serialize_type_map(  # noqa: PLR0917 - moto's signature
    original: Callable[..., Any], self: Any, serialized: Any, value: Any, shape: Any, key: str
) -> None:
    # An item or a key: a map of attribute values (shape AttributeMap, Key, ...).
    if (
        getattr(shape.value, "name", None) == "AttributeValue"
        and type(value) is dict
        and all(_wire_ready(each) for each in value.values())
    ):
        self._default_serialize(serialized, dict(value), shape, key)
        return
    original(self, serialized, value, shape, key)


dynamodb_transaction_backup = Hook(
    "dynamodb_transaction_backup",
    why="moto's TransactWriteItems deep-copies every table it writes to before it starts, "
    "to roll back a cancelled transaction: one transaction of a 100,000-item ledger copies "
    "all of it (~0.1 s per item written, growing with the table). DynamoDB keeps only the "
    "transaction's own items all-or-nothing. The engine copies just the items the "
    "transaction names and puts them back if it is cancelled; a table with a stream still "
    "gets moto's whole-table copy (its stream records roll back with it).",
    upstream="no upstream issue found (moto's DynamoDBBackend.transact_write_items)",
)

_ACTIONS = ("Put", "Update", "Delete", "ConditionCheck")


@dataclass(frozen=True)
class _SavedItem:
    table: Any
    hash_key: Any
    range_key: Any
    item: Any
    """A copy of the item as it was, or None if it did not exist."""

    def restore(self) -> None:
        items = self.table.items
        if self.range_key is None:
            if self.item is None:
                items.pop(self.hash_key, None)
            else:
                items[self.hash_key] = self.item
        elif self.item is None:
            if self.hash_key in items:
                items[self.hash_key].pop(self.range_key, None)
        else:
            items[self.hash_key][self.range_key] = self.item


def _saved_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[_SavedItem] | None:
    """Copies of the items a transaction names, or None where only moto's copy will do."""
    saved: list[_SavedItem] = []
    for action in transact_items:
        if len(action) != 1 or next(iter(action)) not in _ACTIONS:
            return None  # moto refuses it itself
        kind, operation = next(iter(action.items()))
        table = backend.tables.get(operation.get("TableName"))
        if table is None or table.stream_shard is not None:
            return None
        key = operation.get("Item") if kind == "Put" else operation.get("Key")
        if not isinstance(key, dict) or table.hash_key_attr not in key:
            return None
        if table.range_key_attr is not None and table.range_key_attr not in key:
            return None
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = (
            DynamoType(key[table.range_key_attr]) if table.range_key_attr is not None else None
        )
        stored = table.items.get(hash_key)
        if range_key is not None:
            stored = stored.get(range_key) if stored else None
        # UpdateItem changes the stored item in place: the copy is what comes back.
        saved.append(_SavedItem(table, hash_key, range_key, copy.deepcopy(stored)))
    return saved


class _NoTableCopies:
    """The backend as moto's transact_write_items sees it: no tables to copy wholesale (its
    ``tables``), everything else the backend's own."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.tables: dict[str, Any] = {}  # read by moto's backup loop only

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


@patch(dynamodb_transaction_backup, DynamoDBBackend, "transact_write_items")
def _transact_write_items(
    original: Callable[..., Any], self: Any, transact_items: list[dict[str, Any]]
) -> Any:
    with _items_lock:
        try:
            saved = _saved_items(self, transact_items) if len(transact_items) <= 100 else None
        # A malformed action or key value: moto's own checks answer for it, with its errors.
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            saved = None
        if saved is None:
            return original(self, transact_items)
        try:
            return original(_NoTableCopies(self), transact_items)
        except BaseException:
            # Put back in reverse: an item named twice is refused by moto, but keep it exact.
            for each in reversed(saved):
                each.restore()
            raise


dynamodb_parsed_expressions = Hook(
    "dynamodb_parsed_expressions",
    why="moto parses a condition or filter expression on every call, twice for each write "
    "of a TransactWriteItems (the transaction's check, then its put), ~0.3 ms each: most of "
    "a ledger write. The same expression with the same names and values parses to the same "
    "operator tree, which only reads the item it is given; the engine keeps the last few "
    "hundred parsed trees. A parse that fails is not kept: it fails again, as on moto.",
    upstream="no upstream issue found (moto.dynamodb.comparisons.get_filter_expression)",
)

_PARSED_LIMIT = 512
_parsed: dict[tuple[Any, ...], Any] = {}


@patch(
    dynamodb_parsed_expressions,
    dynamodb_comparisons,
    "get_filter_expression",
    also_bound_in=(dynamodb_models, dynamodb_table),
)
def _get_filter_expression(
    original: Callable[..., Any],
    expr: str | None,
    names: dict[str, str] | None,
    values: dict[str, dict[str, str]] | None,
) -> Any:
    try:
        key = (
            expr,
            json.dumps(names, sort_keys=True),
            json.dumps(values, sort_keys=True),
        )
    except (TypeError, ValueError):  # binary values (bytes): parsed every time
        return original(expr, names, values)
    parsed = _parsed.get(key)
    if parsed is None:
        parsed = original(expr, names, values)
        if len(_parsed) >= _PARSED_LIMIT:
            _parsed.clear()
        _parsed[key] = parsed
    return parsed


dynamodb_item_size = Hook(
    "dynamodb_item_size",
    why="moto checks an item's 400 KB limit as it builds the item, one attribute at a time, "
    "re-measuring every attribute already set each time: a record of n attributes is "
    "measured n*(n+1)/2 times (120 for a ledger item record), most of every write. The "
    "engine measures each attribute once and keeps the running total, refusing the item "
    "at the same attribute and the same size (moto's 405,000 bytes) as moto does.",
    upstream="getmoto/moto#1874 (the size check; its cost has no issue)",
)

# moto's own limit (dynamo_type.LimitedSizeDict): between DynamoDB's 409 and 410 KB as tried.
_ITEM_SIZE_LIMIT = 405_000


@patch(dynamodb_item_size, DynamoDBItem, "__init__", wraps=False)
def _item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    """Replaces moto's Item.__init__, which sets the same three attributes: delegating would
    measure every attribute again."""
    self.hash_key = hash_key
    self.range_key = range_key
    self.attrs = LimitedSizeDict()
    total = 0
    for key, value in attrs.items():
        typed = DynamoType(value)
        total += dynamodb_bytesize(key) + typed.size()
        if total > _ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        dict.__setitem__(self.attrs, key, typed)


HOOKS = (
    dynamodb_atomic_items,
    dynamodb_throttling,
    dynamodb_partition_query,
    dynamodb_wire_values,
    dynamodb_transaction_backup,
    dynamodb_parsed_expressions,
    dynamodb_item_size,
)
