"""Finalize a run from the ledger: tally its items, then merge rejects, write the summary,
record the outcome, announce it and publish its metrics.

The ledger is the truth: counts come from item records, never from logs or map results. The
tally (:mod:`stepburst.tally`) decides the outcome from the job's tolerated-failure percentage.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from stepburst import outputs, replacing, run_metrics, storage, tables
from stepburst.adapters import events
from stepburst.combining import record_unreported
from stepburst.errors import StepburstError
from stepburst.jobs import Job, JobCatalog
from stepburst.layout import manifest_key, rejects_key, summary_key
from stepburst.ledger import Ledger, item_digest, now_iso
from stepburst.observability import METRICS_NAMESPACE, SERVICE_NAME, logger, metrics
from stepburst.settings import Settings
from stepburst.statuses import CombineStatus, RunStatus
from stepburst.tally import RunTally, Verdict, run_verdict, tally_run

RUN_FINISHED = "Run Finished"
EVENT_SOURCE = "stepburst"


@dataclass(frozen=True, slots=True)
class Outcome:
    status: RunStatus
    run_id: str | None
    cause: str | None
    summary: dict[str, Any]

    def to_state(self) -> dict[str, Any]:
        state = {"status": self.status, "run_id": self.run_id, **self._brief()}
        if self.cause:
            state["cause"] = self.cause
        return state

    def _brief(self) -> dict[str, Any]:
        keys = (
            "summary_uri",
            "planned_items",
            "succeeded",
            "failed",
            "cancelled",
            "failed_items",
            "combine_status",
            "result",
        )
        return {k: self.summary[k] for k in keys if k in self.summary}


class Finalizer:
    def __init__(self, settings: Settings, catalog: JobCatalog, ledger: Ledger) -> None:
        self.settings = settings
        self.catalog = catalog
        self.ledger = ledger

    def finalize(
        self,
        plan: Mapping[str, Any],
        fanout: Mapping[str, Any],
        combine: Mapping[str, Any] | None = None,
    ) -> Outcome:
        run_id = str(plan["run_id"])
        run = self.ledger.get_run(run_id) or {}
        job = self.catalog.get(str(plan["job"]))
        items = self.item_digests(run_id, int(run.get("redrives") or 0))
        tally = tally_run(
            items,
            # The run's own count: a redrive plans only the items it runs again.
            planned=int(run.get("planned_items") or plan.get("items", 0)),
            tolerated_failure_percent=job.tolerated_failure_percent,
        )
        prefix = str(run.get("output_prefix") or outputs.run_output_prefix(job, run_id, {}))
        combine_status, combine_cause = self._combine_outcome(job, run_id, run, tally, combine)
        verdict = run_verdict(tally, combine_status=combine_status, combine_cause=combine_cause)
        if verdict.status == RunStatus.SUCCEEDED:
            verdict = self._publish_outputs(job, run_id, run, prefix) or verdict
        merged_rejects = self._merge_rejects(items, prefix) if tally.totals["rejects"] else None
        summary: dict[str, Any] = {
            "run_id": run_id,
            "job": job.name,
            "status": verdict.status,
            "cause": verdict.cause,
            "trigger": run.get("trigger"),
            "started_at": run.get("started_at"),
            "finished_at": now_iso(),
            **tally.counts(),
            "output_bucket": self.settings.output_bucket,
            "output_prefix": prefix,
            "rejects_key": merged_rejects,
            "summary_uri": f"s3://{self.settings.output_bucket}/{summary_key(prefix)}",
            "failed_items": tally.failed_items,
            "fanout_error": fanout.get("Error") if isinstance(fanout, Mapping) else None,
        }
        if combine_status is not None:
            summary.update(
                combine_status=combine_status,
                combine_cause=combine_cause or None,
                result=run.get("combine_result")
                if combine_status == CombineStatus.SUCCEEDED
                else None,
            )
        self._write_summary(summary_key(prefix), summary)
        self._record(run_id, tally, verdict, summary)
        self._announce(summary)
        self._publish_metrics(job.name, tally)
        run_metrics.publish(tally, summary)
        logger.info("run finished", extra={"run_id": run_id, "status": verdict.status})
        return Outcome(status=verdict.status, run_id=run_id, cause=verdict.cause, summary=summary)

    def _combine_outcome(
        self,
        job: Job,
        run_id: str,
        run: Mapping[str, Any],
        tally: RunTally,
        combine: Mapping[str, Any] | None,
    ) -> tuple[str | None, str | None]:
        """The combine step's status and cause, as the run record holds them; a step that
        ended without recording (a timeout, a crash) is recorded FAILED here, with the state
        machine's error, and one skipped before it could record is recorded SKIPPED."""
        if job.combine is None:
            return None, None
        status = run.get("combine_status")
        if tally.status != RunStatus.SUCCEEDED:
            cause = f"combine skipped: {tally.cause}"
            if status != CombineStatus.SKIPPED:
                self.ledger.update_run(
                    run_id, {"combine_status": CombineStatus.SKIPPED, "combine_cause": cause}
                )
            return CombineStatus.SKIPPED, cause
        if status in (CombineStatus.SUCCEEDED, CombineStatus.FAILED):
            return str(status), str(run.get("combine_cause") or "") or None
        combine = combine or {}
        error = combine.get("error") if "error" in combine else combine
        return record_unreported(
            self.ledger, run_id, run, error if isinstance(error, Mapping) else None
        )

    def _publish_outputs(
        self, job: Job, run_id: str, run: Mapping[str, Any], prefix: str
    ) -> Verdict | None:
        """A successful run's outputs replace earlier runs' and join the job's table; a
        failure of either fails the run with its cause (None if both went well)."""
        values = {str(k): str(v) for k, v in (run.get("output_values") or {}).items()}
        try:
            if job.output.replace:
                replacing.remove_replaced(self.settings, run_id)
            table = job.output.table
            if table is not None and table.partition_by:
                database = self.settings.tables_database
                if not database:
                    raise StepburstError("STEPBURST_TABLES_DATABASE is not set")
                tables.register_partition(
                    job, database, self.settings.output_bucket, prefix, values
                )
        except StepburstError as exc:
            logger.exception("publishing the outputs failed", extra={"run_id": run_id})
            return Verdict(RunStatus.FAILED, f"outputs not published: {exc}")
        return None

    def item_digests(self, run_id: str, redrives: int) -> list[dict[str, Any]]:
        """Every recorded item's latest state, in item order.

        Workers leave one digest per unit; a unit without one (its worker crashed, or its
        container never ran) is read item by item. Later manifests (redrives) win.
        """
        digests = self.ledger.unit_digests(run_id)
        latest: dict[int, dict[str, Any]] = {}
        for manifest in range(redrives + 1):
            units = storage.get_json(self.settings.work_bucket, manifest_key(run_id, manifest))
            # The manifest says which item a key is: a record the state machine wrote before
            # the worker did may hold nothing but its status.
            unreported: dict[str, int] = {}
            for unit in units:
                reported = digests.get((manifest, int(unit["index"])))
                if reported is None:
                    unreported.update(
                        (str(item["sk"]), int(item["index"])) for item in unit["items"]
                    )
                else:
                    latest.update((int(entry["item"]), entry) for entry in reported)
            for key, record in self.ledger.get_items(run_id, unreported).items():
                latest[unreported[key]] = {**item_digest(record), "item": unreported[key]}
        return [latest[index] for index in sorted(latest)]

    def _merge_rejects(self, items: Iterable[Mapping[str, Any]], prefix: str) -> str:
        """One rejects file for the run, with each line's number in the whole input."""
        key = rejects_key(prefix)
        with storage.MultipartWriter(self.settings.output_bucket, key) as writer:
            first_line = 1
            for item in items:  # sorted by index, so ranges come in file order
                part = item.get("rejects_key")
                if part:
                    for line in storage.iter_lines(self.settings.output_bucket, str(part)):
                        reject = orjson.loads(line)
                        reject["line"] = first_line + int(reject["item_line"]) - 1
                        writer.write(orjson.dumps(reject) + b"\n")
                first_line += int(item.get("lines") or 0)
        return key

    def _write_summary(self, key: str, summary: Mapping[str, Any]) -> None:
        storage.put_json(self.settings.output_bucket, key, summary)

    def _record(
        self, run_id: str, tally: RunTally, verdict: Verdict, summary: Mapping[str, Any]
    ) -> None:
        """The run record's outcome: what `stepburst status` and `runs` show."""
        self.ledger.update_run(
            run_id,
            {
                "status": verdict.status,
                "finished_at": summary["finished_at"],
                "succeeded": tally.succeeded,
                "failed": tally.failed,
                "cancelled": tally.cancelled,
                "summary_key": summary_key(str(summary["output_prefix"])),
                # An empty cause replaces an earlier attempt's (a redrive that succeeded).
                "cause": verdict.cause or "",
                "item_routes": tally.routes,
                **tally.totals,
            },
        )

    def _publish_metrics(self, job: str, tally: RunTally) -> None:
        metrics.add_metric(name=f"Runs{tally.status.title()}", unit=MetricUnit.Count, value=1)
        # Per-job figures go out as a metric set of their own, made for this run: the shared
        # one lives as long as a warm container and must not collect a job dimension per run.
        per_job = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
        per_job.add_dimension(name="job", value=job)
        per_job.add_metric(name="ItemsSucceeded", unit=MetricUnit.Count, value=tally.succeeded)
        per_job.add_metric(name="ItemsFailed", unit=MetricUnit.Count, value=tally.failed)
        per_job.add_metric(
            name="RecordsWritten", unit=MetricUnit.Count, value=tally.totals["records"]
        )
        per_job.flush_metrics()

    def _announce(self, summary: Mapping[str, Any]) -> None:
        detail = {k: v for k, v in summary.items() if k != "failed_items"}
        events.put_event(
            self.settings.event_bus_name,
            EVENT_SOURCE,
            RUN_FINISHED,
            json.dumps(detail, default=str),
        )
