"""Run one work unit: the same code on Lambda and in the worker container.

Items run in order. An item that already succeeded (an earlier attempt, or the Lambda run that
hit its timeout before a container took over) is skipped, so re-running a unit is safe. Each
item's failure is recorded with its cause; the unit then raises ``ItemsFailedError`` so that
the state machine counts the unit against the job's tolerated-failure budget.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stepburst.errors import ItemsFailedError, StepburstError
from stepburst.jobs import Job
from stepburst.layout import output_prefix, part_key, rejects_part_key
from stepburst.ledger import Ledger, item_digest, now_iso
from stepburst.manifest import Item, Unit
from stepburst.multicore import process_jsonl_range_on_cpus
from stepburst.observability import logger
from stepburst.records import import_function
from stepburst.settings import Settings
from stepburst.statuses import ItemStatus
from stepburst.storage import S3Object

# What an item's command leaves in the ledger: enough to see why it failed.
OUTPUT_TAIL_BYTES = 4096
# An item function's result lives in its ledger record, and DynamoDB items hold 400 KB.
MAX_RESULT_BYTES = 64 * 1024

ItemFunction = Callable[[str, Mapping[str, str]], Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class UnitResult:
    unit: int
    succeeded: int
    skipped: int
    failed: int

    def to_state(self) -> dict[str, int]:
        return {
            "unit": self.unit,
            "succeeded": self.succeeded,
            "skipped": self.skipped,
            "failed": self.failed,
        }


class ItemResultError(StepburstError):
    """An item function returned something its ledger record cannot keep."""


class CommandFailedError(StepburstError):
    """An item's command exited non-zero."""

    def __init__(self, exit_code: int, output_tail: str) -> None:
        self.exit_code = exit_code
        self.output_tail = output_tail
        super().__init__(f"the command exited with code {exit_code}: {output_tail[-500:]}")


_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_command(command: str, values: Mapping[str, str]) -> list[str]:
    """Split a command line and replace each ``{VAR}``; an unknown one is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        if name not in values:
            raise StepburstError(f"{{{name}}} in the command is not a param or variable")
        return values[name]

    return [_VARIABLE.sub(replace, argument) for argument in shlex.split(command)]


def run_command(command: str, variables: Mapping[str, str], *, jobs_dir: Path) -> dict[str, Any]:
    """Run an item's command in a scratch directory, keeping only the tail of its output.

    A leading ``python`` is this interpreter, with the jobs directory and stepburst importable,
    so a job's own modules run the same on Lambda, in the container and locally.
    """
    import_path = [str(jobs_dir), str(Path(__file__).resolve().parent.parent)]
    if os.environ.get("PYTHONPATH"):
        import_path.append(os.environ["PYTHONPATH"])
    environment = {**os.environ, **variables, "PYTHONPATH": os.pathsep.join(import_path)}
    arguments = render_command(command, environment)
    if arguments and arguments[0] in ("python", "python3"):
        arguments[0] = sys.executable
    with (
        tempfile.TemporaryDirectory(prefix="stepburst-") as scratch,
        tempfile.TemporaryFile() as log,
    ):
        completed = subprocess.run(
            arguments,
            cwd=scratch,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
        log.seek(max(0, log.seek(0, os.SEEK_END) - OUTPUT_TAIL_BYTES))
        tail = log.read().decode("utf-8", "replace")
    if completed.returncode != 0:
        raise CommandFailedError(completed.returncode, tail)
    return {"exit_code": 0, "output_tail": tail[-1000:]}


def _previous_attempt(record: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("last_attempt", "status", "route", "error", "cause", "exit_code", "finished_at")
    return {key: record[key] for key in keys if record.get(key) is not None}


class UnitRunner:
    def __init__(self, settings: Settings, ledger: Ledger) -> None:
        self.settings = settings
        self.ledger = ledger

    def run(
        self,
        job: Job,
        run_id: str,
        unit: Unit,
        *,
        attempt: int,
        route: str,
        params: Mapping[str, str] | None = None,
    ) -> UnitResult:
        existing = self.ledger.get_items(run_id, (item.sk for item in unit.items))
        pending = [
            item
            for item in unit.items
            if existing.get(item.sk, {}).get("status") != ItemStatus.SUCCEEDED
        ]
        started_at = now_iso()
        base = {
            item.sk: self._base_record(
                item,
                unit,
                previous=existing.get(item.sk),
                route=route,
                attempt=attempt,
                started_at=started_at,
            )
            for item in pending
        }
        self.ledger.put_items(
            run_id, ({**record, "status": ItemStatus.RUNNING} for record in base.values())
        )
        outcomes = []
        failed = 0
        for item in pending:
            began = time.perf_counter()
            record = dict(base[item.sk])
            try:
                details = self._run_item(job, run_id, item, params or {})
            except Exception as exc:  # an item's failure is recorded, not raised: see module doc
                failed += 1
                logger.exception(
                    "item failed", extra={"run_id": run_id, "item": item.index, "route": route}
                )
                record.update(
                    status=ItemStatus.FAILED, error=type(exc).__name__, cause=str(exc)[:4000]
                )
                if isinstance(exc, CommandFailedError):
                    record["exit_code"] = exc.exit_code
            else:
                record.update(status=ItemStatus.SUCCEEDED, **details)
            record["finished_at"] = now_iso()
            record["duration_seconds"] = round(time.perf_counter() - began, 3)
            # Written as each item ends, so a unit cut short (Lambda's timeout, a killed
            # process) leaves its finished items SUCCEEDED and the next attempt skips them.
            if not self.ledger.finish_item(run_id, record):
                logger.info(
                    "item cancelled meanwhile", extra={"run_id": run_id, "item": item.index}
                )
                record = {**record, "status": ItemStatus.CANCELLED}
            outcomes.append(record)
        latest = {**existing, **{record["sk"]: record for record in outcomes}}
        self.ledger.put_unit_digest(
            run_id,
            unit.manifest,
            unit.index,
            (item_digest(latest[item.sk]) for item in unit.items if item.sk in latest),
        )
        result = UnitResult(
            unit=unit.index,
            succeeded=len(pending) - failed,
            skipped=len(unit.items) - len(pending),
            failed=failed,
        )
        logger.info("unit finished", extra={"run_id": run_id, **result.to_state()})
        if failed:
            raise ItemsFailedError(
                f"{failed} of {len(unit.items)} items of unit {unit.index} failed; "
                "the ledger has each cause"
            )
        return result

    @staticmethod
    def _base_record(
        item: Item,
        unit: Unit,
        *,
        previous: Mapping[str, Any] | None,
        route: str,
        attempt: int,
        started_at: str,
    ) -> dict[str, Any]:
        history = list((previous or {}).get("history") or [])
        # RecoverUnit records each failed attempt with its class; an attempt it never saw
        # (the state machine's last-resort path) is kept from the record itself.
        recorded = bool(history) and history[-1].get("attempt") == (previous or {}).get(
            "last_attempt"
        )
        if previous and previous.get("status") and not recorded:
            history.append(_previous_attempt(previous))
        return {
            "sk": item.sk,
            "item": item.index,
            "unit": unit.index,
            "value": item.value,
            "route": route,
            "attempts": int((previous or {}).get("attempts", 0)) + 1,
            "last_attempt": attempt,
            "started_at": started_at,
            "estimated_seconds": item.estimated_seconds,
            "history": history or None,
        }

    def _run_item(
        self, job: Job, run_id: str, item: Item, params: Mapping[str, str]
    ) -> dict[str, Any]:
        prefix = output_prefix(job.output.prefix, run_id)
        if item.jsonl is not None:
            if job.run.function is None:
                raise StepburstError("a jsonl item needs a record function")
            source = item.jsonl.source
            # One process per vCPU the task or function has (one on the default Lambda).
            result = process_jsonl_range_on_cpus(
                S3Object(source.bucket, source.key, source.version_id),
                item.jsonl.start,
                item.jsonl.end,
                job.run.function,
                S3Object(self.settings.output_bucket, part_key(prefix, item.index)),
                S3Object(self.settings.output_bucket, rejects_part_key(prefix, item.index)),
                if_match=source.etag,
                max_reject_percent=job.split.jsonl.max_reject_percent if job.split.jsonl else None,
            )
            stats = result.stats
            return {
                "compression": result.compression,
                "lines": stats.lines,
                "records": stats.records,
                "rejects": stats.rejects,
                "filtered": stats.filtered,
                "bytes_in": stats.bytes_in,
                "bytes_out": stats.bytes_out,
                "output_key": result.output.key,
                "rejects_key": result.rejects.key if result.rejects is not None else None,
            }
        if item.value is None:
            raise StepburstError(f"item {item.index} has nothing to run")
        # Commands and item functions see the same names: the run's params and where it writes.
        variables = {
            **params,
            "ITEM": item.value,
            "ITEM_INDEX": str(item.index),
            "RUN_ID": run_id,
            "JOB": job.name,
            "OUTPUT_BUCKET": self.settings.output_bucket,
            "OUTPUT_PREFIX": prefix,
        }
        if job.run.command is not None:
            return run_command(job.run.command, variables, jobs_dir=self.settings.jobs_dir)
        assert job.run.function is not None
        item_function: ItemFunction = import_function(job.run.function)
        returned = item_function(item.value, variables)
        return {"result": item_result(job.run.function, returned)}


def item_result(function: str, returned: object) -> dict[str, Any] | None:
    """What an item function returned, as the ledger keeps it: a JSON object, or None.

    Anything else fails the item with a cause that says what to return, rather than a
    ``TypeError`` from deep inside ``dict()`` or a ledger write that refuses a value.
    """
    if returned is None:
        return None
    if not isinstance(returned, Mapping):
        kind = type(returned).__name__
        article = "an" if kind[0] in "aeiou" else "a"
        raise ItemResultError(
            f"{function}: the function returned {article} {kind}; return a mapping or None"
        )
    try:
        encoded = orjson.dumps(dict(returned), option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise ItemResultError(
            f"{function}: the function's result cannot be kept as JSON: {exc}"
        ) from exc
    if len(encoded) > MAX_RESULT_BYTES:
        raise ItemResultError(
            f"{function}: the function's result is {len(encoded)} bytes as JSON, over "
            f"{MAX_RESULT_BYTES}; write it to OUTPUT_BUCKET under OUTPUT_PREFIX and return "
            "its key"
        )
    result: dict[str, Any] = orjson.loads(encoded)
    return result or None
