"""The DynamoDB ledger: one record per run, one per item, one per trigger.

Single-table layout (keys ``pk``/``sk``, built by :mod:`stepburst.layout`)::

    RUN#<run id>      RUN           the run: job, trigger, status, counts, timings
    RUN#<run id>      ITEM#<index>  an item: status, route, attempts, exit code, stats
    RUN#<run id>      UNIT#<m>#<u>  a digest of every item of unit u of manifest m (0, or the
                                    redrive's number), written when a worker finishes it
    TRIGGER#<id>      TRIGGER       a claimed (or ignored) trigger delivery

Only run records carry ``job`` and ``started_at``, so the sparse ``ByJob`` index lists runs
and nothing else. Items are written per unit in batches, never once per record; Finalize reads
one digest per unit instead of every item. DynamoDB itself is spoken to through
:class:`stepburst.adapters.dynamodb.Table`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from stepburst.adapters.dynamodb import Table
from stepburst.errors import ConditionFailedError
from stepburst.layout import (
    EXECUTION_SK,
    ITEM_PREFIX,
    RUN_SK,
    TRIGGER_SK,
    UNIT_PREFIX,
    execution_pk,
    run_pk,
    trigger_pk,
    unit_sort_key,
)
from stepburst.statuses import ItemStatus, TriggerStatus

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
_CAUSE_LIMIT = 4000
BY_JOB_INDEX = "ByJob"
# An item's outcome is written unless a cancel marked it CANCELLED first.
_NOT_CANCELLED = "attribute_not_exists(#status) OR #status <> :cancelled"


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


class Ledger:
    def __init__(self, table_name: str, retention_days: int) -> None:
        self.table_name = table_name
        self.retention_days = retention_days
        self._table = Table(table_name)

    def _expires_at(self) -> int:
        return int(time.time()) + self.retention_days * 86400

    # -- triggers ---------------------------------------------------------------------------

    def claim_trigger(
        self, trigger_id: str, run_id: str, details: Mapping[str, Any], *, execution_id: str
    ) -> bool:
        """Claim a trigger for ``run_id``; False if another execution holds the claim.

        The execution that holds a claim may claim it again (the state machine retried its
        Plan), and a claim released by an execution that failed before its run started may be
        taken by a redelivery.
        """
        record = {
            "pk": trigger_pk(trigger_id),
            "sk": TRIGGER_SK,
            "status": TriggerStatus.CLAIMED,
            "run_id": run_id,
            "execution_id": execution_id,
            "claimed_at": now_iso(),
            "expires_at": self._expires_at(),
            **details,
        }
        try:
            self._table.put(
                record,
                condition="attribute_not_exists(pk) OR execution_id = :me OR #status = :released",
                names={"#status": "status"},
                values={":me": execution_id, ":released": TriggerStatus.RELEASED},
            )
        except ConditionFailedError:
            return False
        self.link_execution(execution_id, run_id=run_id, trigger_id=trigger_id)
        return True

    def release_trigger(self, trigger_id: str, execution_id: str, cause: str) -> bool:
        """Give up the claim ``execution_id`` holds, so that a redelivery can start the run."""
        try:
            self._table.update(
                {"pk": trigger_pk(trigger_id), "sk": TRIGGER_SK},
                update="SET #status = :released, released_at = :at, release_cause = :cause",
                names={"#status": "status"},
                values={
                    ":released": TriggerStatus.RELEASED,
                    ":at": now_iso(),
                    ":cause": cause[:_CAUSE_LIMIT],
                    ":me": execution_id,
                    ":claimed": TriggerStatus.CLAIMED,
                },
                condition="execution_id = :me AND #status = :claimed",
            )
        except ConditionFailedError:
            return False
        return True

    # -- executions -------------------------------------------------------------------------

    def link_execution(
        self, execution_id: str, *, run_id: str, trigger_id: str | None = None
    ) -> None:
        """Which run (and trigger claim) an execution is for, so that whatever ends the
        execution can be reconciled with the ledger."""
        record = {
            "pk": execution_pk(execution_id),
            "sk": EXECUTION_SK,
            "run_id": run_id,
            "expires_at": self._expires_at(),
        }
        if trigger_id is not None:
            record["trigger_id"] = trigger_id
        self._table.put(record)

    def execution_link(self, execution_id: str) -> dict[str, Any] | None:
        return self._get(execution_pk(execution_id), EXECUTION_SK)

    def record_ignored_trigger(self, trigger_id: str, details: Mapping[str, Any]) -> None:
        record = {
            "pk": trigger_pk(trigger_id),
            "sk": TRIGGER_SK,
            "status": TriggerStatus.IGNORED,
            "claimed_at": now_iso(),
            "expires_at": self._expires_at(),
            **details,
        }
        self._table.put(record)

    def get_trigger(self, trigger_id: str) -> dict[str, Any] | None:
        return self._get(trigger_pk(trigger_id), TRIGGER_SK)

    # -- runs -------------------------------------------------------------------------------

    def create_run(self, run: Mapping[str, Any]) -> None:
        record = {
            "pk": run_pk(str(run["run_id"])),
            "sk": RUN_SK,
            "expires_at": self._expires_at(),
            **run,
        }
        self._table.put(record)

    def update_run(self, run_id: str, changes: Mapping[str, Any]) -> None:
        """Set the given fields of a run record; fields given as None are left alone."""
        present = [(name, value) for name, value in changes.items() if value is not None]
        names = {f"#f{i}": name for i, (name, _) in enumerate(present)}
        values = {f":v{i}": value for i, (_, value) in enumerate(present)}
        assignments = ", ".join(f"#f{i} = :v{i}" for i in range(len(present)))
        self._table.update(
            {"pk": run_pk(run_id), "sk": RUN_SK},
            update=f"SET {assignments}",
            names=names,
            values=values,
            condition="attribute_exists(pk)",
        )

    def request_item_cancels(
        self, run_id: str, requests: Iterable[Mapping[str, Any]], *, running: str
    ) -> bool:
        """Add item cancel requests to the run's ``cancelled_items``, if the run is still
        ``running``; False if it is not. Kept on the run record, which no worker writes, so a
        worker that starts its unit meanwhile cannot erase the request."""
        try:
            self._table.update(
                {"pk": run_pk(run_id), "sk": RUN_SK},
                update="SET cancelled_items = list_append(if_not_exists(cancelled_items, :none), "
                ":requests)",
                names={"#status": "status"},
                values={":none": [], ":requests": list(requests), ":running": running},
                condition="attribute_exists(pk) AND #status = :running",
            )
        except ConditionFailedError:
            return False
        return True

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self._get(run_pk(run_id), RUN_SK)

    def list_runs(self, job: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The newest runs of ``job`` first."""
        return list(
            self._table.query(
                "#job = :job",
                {":job": job},
                names={"#job": "job"},
                index=BY_JOB_INDEX,
                newest_first=True,
                limit=limit,
            )
        )

    # -- items ------------------------------------------------------------------------------

    def get_items(self, run_id: str, sort_keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Item records by sort key, for the keys that exist."""
        keys = [{"pk": run_pk(run_id), "sk": sk} for sk in dict.fromkeys(sort_keys)]
        return {str(item["sk"]): item for item in self._table.get_many(keys)}

    def put_items(self, run_id: str, records: Iterable[Mapping[str, Any]]) -> None:
        """Write whole item records, 25 to a request, resending what DynamoDB leaves over."""
        expires_at = self._expires_at()
        self._table.put_many(
            {"pk": run_pk(run_id), "run_id": run_id, "expires_at": expires_at, **r} for r in records
        )

    def finish_items(self, run_id: str, records: Sequence[Mapping[str, Any]]) -> set[str]:
        """Write items' outcomes unless the run was cancelled meanwhile (a cancel marks an item
        CANCELLED): a late worker never turns a cancelled item back. One transaction per group
        of up to 100 items, not a write an item. The sort keys of the items found cancelled,
        which were not written."""
        expires_at = self._expires_at()
        refused = self._table.put_many_where(
            [
                {"pk": run_pk(run_id), "run_id": run_id, "expires_at": expires_at, **r}
                for r in records
            ],
            condition=_NOT_CANCELLED,
            names={"#status": "status"},
            values={":cancelled": ItemStatus.CANCELLED},
        )
        return {str(records[position]["sk"]) for position in refused}

    def cancel_item(self, run_id: str, record: Mapping[str, Any]) -> bool:
        """Write an item's CANCELLED record unless it has ended (succeeded, failed or been
        cancelled) meanwhile; False if it had."""
        try:
            self._table.put(
                {
                    "pk": run_pk(run_id),
                    "run_id": run_id,
                    "expires_at": self._expires_at(),
                    **record,
                    "status": ItemStatus.CANCELLED,
                },
                condition="attribute_not_exists(#status) OR NOT #status IN (:ended, :failed, "
                ":cancelled)",
                names={"#status": "status"},
                values={
                    ":ended": ItemStatus.SUCCEEDED,
                    ":failed": ItemStatus.FAILED,
                    ":cancelled": ItemStatus.CANCELLED,
                },
            )
        except ConditionFailedError:
            return False
        return True

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
        return self._table.query(
            "pk = :pk AND begins_with(sk, :prefix)", {":pk": run_pk(run_id), ":prefix": prefix}
        )

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self._table.get({"pk": pk, "sk": sk})
