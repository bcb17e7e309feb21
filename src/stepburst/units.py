"""Run one work unit: the same code on Lambda and in the worker container.

Items run in order. An item that already succeeded (an earlier attempt, or the Lambda run that
hit its timeout before a container took over) is skipped, so re-running a unit is safe; so is
one a user cancelled (``stepburst cancel RUN --item``). Each
item's failure is recorded with its cause; the unit then raises ``ItemsFailedError`` so that
the state machine counts the unit against the job's tolerated-failure budget.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stepburst import table_items
from stepburst.errors import ItemsFailedError, StepburstError
from stepburst.item_cancels import skipped_by_cancel
from stepburst.item_outcomes import OutcomeWriter
from stepburst.job_credentials import job_role_for
from stepburst.jobs import Job
from stepburst.jobs.pipeline import Step
from stepburst.layout import output_prefix, part_key, rejects_part_key
from stepburst.ledger import Ledger, item_digest, now_iso
from stepburst.manifest import Item, Unit
from stepburst.multicore import process_jsonl_range_on_cpus
from stepburst.observability import logger
from stepburst.outputs import item_output_prefix
from stepburst.records import import_function
from stepburst.secret_values import NO_SECRETS, SecretValues, read_secrets
from stepburst.settings import Settings
from stepburst.statuses import ItemStatus
from stepburst.steps import (
    RECORDED_TAIL_CHARS,
    ItemContext,
    StepFailedError,
    item_result,
    run_steps,
)
from stepburst.storage import S3Object

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


def _previous_attempt(record: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "last_attempt",
        "status",
        "route",
        "error",
        "cause",
        "exit_code",
        "finished_at",
        "placement",
    )
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
        placement: Mapping[str, str] | None = None,
        function_arn: str | None = None,
    ) -> UnitResult:
        """Run the unit's pending items; ``placement`` says where (see stepburst.placement)
        and is kept on each item's record, whatever its outcome. On Lambda, ``function_arn``
        (the invoked function's) places the job's role its commands run with."""
        existing = self.ledger.get_items(run_id, (item.sk for item in unit.items))
        pending = [
            item
            for item in unit.items
            if existing.get(item.sk, {}).get("status") != ItemStatus.SUCCEEDED
            # A user cancelled it before its unit started (stepburst.item_cancels).
            and not skipped_by_cancel(existing.get(item.sk), unit.manifest)
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
                placement=placement,
            )
            for item in pending
        }
        self.ledger.put_items(
            run_id, ({**record, "status": ItemStatus.RUNNING} for record in base.values())
        )
        outcomes = []
        failed = 0
        run_prefix, values = self._output_location(job, run_id) if pending else ("", {})
        secrets: SecretValues | None = None
        job_role = job_role_for(self.settings.stack_name, job.name, function_arn)
        writer = OutcomeWriter(self.ledger, run_id)
        for item in pending:
            began = time.perf_counter()
            record = dict(base[item.sk])
            try:
                prefix = item_output_prefix(job, run_prefix, values, item)
                # Read once per unit, inside the item: a secret that cannot be read fails the
                # item with its cause, like any other step of it.
                secrets = secrets or read_secrets(job.secrets)
                details = {
                    "output_prefix": prefix,
                    **self._run_item(
                        job,
                        run_id,
                        item,
                        params or {},
                        prefix=prefix,
                        secrets=secrets,
                        job_role=job_role,
                    ),
                }
            except Exception as exc:  # an item's failure is recorded, not raised: see module doc
                failed += 1
                record.update(_failure_fields(exc, secrets or NO_SECRETS))
                logger.error(
                    "item failed",
                    extra={
                        "run_id": run_id,
                        "item": item.index,
                        "route": route,
                        "error": record["error"],
                        "cause": record["cause"],
                        # Formatted and redacted here: a logged exception would show values.
                        "traceback": (secrets or NO_SECRETS).redact(
                            "".join(traceback.format_exception(exc))
                        ),
                    },
                )
            else:
                record.update(status=ItemStatus.SUCCEEDED, **details)
            took = time.perf_counter() - began
            record["finished_at"] = now_iso()
            record["duration_seconds"] = round(took, 3)
            # Written as items end (quick ones a group at a time), so a unit cut short
            # (Lambda's timeout, a killed process) leaves its finished items SUCCEEDED and the
            # next attempt skips them: see stepburst.item_outcomes.
            writer.add(record, took_seconds=took)
            outcomes.append(record)
        writer.flush()
        for index, record in enumerate(outcomes):
            if record["sk"] in writer.cancelled:
                logger.info(
                    "item cancelled meanwhile", extra={"run_id": run_id, "item": record["item"]}
                )
                outcomes[index] = {**record, "status": ItemStatus.CANCELLED}
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
        placement: Mapping[str, str] | None = None,
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
            "placement": dict(placement) if placement else None,
        }

    def _output_location(self, job: Job, run_id: str) -> tuple[str, dict[str, str]]:
        """The run's folder and template values: fixed by Plan on the run record for a key
        template, so every unit and every attempt writes where the run does."""
        if job.output.key is None:
            assert job.output.prefix is not None
            return output_prefix(job.output.prefix, run_id), {}
        run = self.ledger.get_run(run_id) or {}
        values = {str(k): str(v) for k, v in (run.get("output_values") or {}).items()}
        if "output_prefix" not in run:
            raise StepburstError(f"run {run_id} has no output folder in the ledger")
        return str(run["output_prefix"]), values

    def _run_item(
        self,
        job: Job,
        run_id: str,
        item: Item,
        params: Mapping[str, str],
        *,
        prefix: str,
        secrets: SecretValues,
        job_role: str | None,
    ) -> dict[str, Any]:
        if item.jsonl is not None:
            if job.run.function is None:
                raise StepburstError("a jsonl item needs a record function")
            source = item.jsonl.source
            # One process per vCPU the task or function has (one on the default Lambda).
            with secrets.in_environment():
                result = process_jsonl_range_on_cpus(
                    S3Object(source.bucket, source.key, source.version_id),
                    item.jsonl.start,
                    item.jsonl.end,
                    job.run.function,
                    S3Object(self.settings.output_bucket, part_key(prefix, item.index)),
                    S3Object(self.settings.output_bucket, rejects_part_key(prefix, item.index)),
                    if_match=source.etag,
                    max_reject_percent=(
                        job.split.jsonl.max_reject_percent if job.split.jsonl else None
                    ),
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
        table = item.csv or item.parquet
        if table is not None:
            if job.run.function is None:
                raise StepburstError("a csv or parquet item needs a record function")
            split = job.split.csv or job.split.parquet
            return table_items.process_table_item(
                table_items.csv_lines(item.csv)
                if item.csv is not None
                else table_items.parquet_lines(table),  # type: ignore[arg-type]
                job.run.function,
                S3Object(self.settings.output_bucket, part_key(prefix, item.index)),
                S3Object(self.settings.output_bucket, rejects_part_key(prefix, item.index)),
                max_reject_percent=split.max_reject_percent if split is not None else 100.0,
            )
        if item.value is None:
            raise StepburstError(f"item {item.index} has nothing to run")
        # Commands and item functions see the same names: the run's params and where it writes.
        variables = {
            **params,
            "ITEM": item.value,
            "ITEM_INDEX": str(item.index),
            "RUN_ID": run_id,
            "JOB": job.name,
            "INPUT_BUCKET": self.settings.input_bucket,
            "OUTPUT_BUCKET": self.settings.output_bucket,
            "OUTPUT_PREFIX": prefix,
        }
        if job.run.steps is not None or job.run.command is not None:
            context = ItemContext(
                item=item.value,
                variables=variables,
                input_bucket=self.settings.input_bucket,
                output_bucket=self.settings.output_bucket,
                output_prefix=prefix,
                jobs_dir=self.settings.jobs_dir,
                secrets=secrets,
                variables_from_environment=job.run.steps is None,
                job_role_arn=job_role,
            )
            return run_steps(job.run.steps or [Step(command=job.run.command)], context)
        assert job.run.function is not None
        item_function: ItemFunction = import_function(job.run.function)
        with secrets.in_environment():
            returned = item_function(item.value, variables)
        return {"result": secrets.redact_value(item_result(job.run.function, returned))}


def _failure_fields(exc: Exception, secrets: SecretValues) -> dict[str, Any]:
    """What an item's ledger record keeps of its failure, with every secret value redacted."""
    if not isinstance(exc, StepFailedError):
        return {
            "status": ItemStatus.FAILED,
            "error": type(exc).__name__,
            "cause": secrets.redact(str(exc))[:4000],
        }
    fields: dict[str, Any] = {
        "status": ItemStatus.FAILED,
        "error": exc.error,
        "cause": secrets.redact(str(exc))[:4000],
        "failed_step": exc.index,
        "failed_step_kind": exc.kind,
        "output_tail": secrets.redact(exc.output_tail)[-RECORDED_TAIL_CHARS:],
    }
    if exc.exit_code is not None:
        fields["exit_code"] = exc.exit_code
    return fields
