"""Finalize a run from the ledger: aggregate, merge rejects, write the summary, announce it.

The ledger is the truth: counts come from item records, never from logs or map results. The
job's tolerated-failure percentage decides the outcome; items that never got a record (the
fan-out stopped early) count as failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from stepburst import storage
from stepburst.adapters import events
from stepburst.jobs import JobCatalog
from stepburst.layout import manifest_key, output_prefix, rejects_key, summary_key
from stepburst.ledger import Ledger, item_digest, now_iso
from stepburst.observability import METRICS_NAMESPACE, SERVICE_NAME, logger, metrics
from stepburst.settings import Settings
from stepburst.statuses import ItemStatus, RunStatus

RUN_FINISHED = "Run Finished"
EVENT_SOURCE = "stepburst"
_NAMED_FAILURES = 20
_COUNTED = ("lines", "records", "rejects", "filtered", "bytes_in", "bytes_out")


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
        keys = ("summary_uri", "planned_items", "succeeded", "failed", "failed_items")
        return {k: self.summary[k] for k in keys if k in self.summary}


class Finalizer:
    def __init__(self, settings: Settings, catalog: JobCatalog, ledger: Ledger) -> None:
        self.settings = settings
        self.catalog = catalog
        self.ledger = ledger

    def finalize(self, plan: Mapping[str, Any], fanout: Mapping[str, Any]) -> Outcome:
        run_id = str(plan["run_id"])
        run = self.ledger.get_run(run_id) or {}
        job = self.catalog.get(str(plan["job"]))
        items = self.item_digests(run_id, int(run.get("redrives") or 0))
        # The run's own count: a redrive plans only the items it runs again.
        planned = int(run.get("planned_items") or plan.get("items", 0))

        succeeded = [item for item in items if item.get("status") == ItemStatus.SUCCEEDED]
        failed = [item for item in items if item.get("status") == ItemStatus.FAILED]
        unfinished = planned - len(succeeded) - len(failed)
        failed_total = len(failed) + unfinished
        failed_percent = 100.0 * failed_total / planned if planned else 0.0
        fanout_error = fanout.get("Error") if isinstance(fanout, Mapping) else None

        # Item counts decide, not the fan-out's own verdict: the Map counts failed units, and
        # a unit of many items fails when any one of them does.
        status = (
            RunStatus.SUCCEEDED
            if failed_percent <= job.tolerated_failure_percent
            else RunStatus.FAILED
        )

        totals = {name: sum(int(item.get(name) or 0) for item in items) for name in _COUNTED}
        routes: dict[str, dict[str, int]] = {}
        for item in items:
            by_status = routes.setdefault(str(item.get("route", "unknown")), {})
            by_status[str(item.get("status"))] = by_status.get(str(item.get("status")), 0) + 1

        prefix = str(run.get("output_prefix") or output_prefix(job.output.prefix, run_id))
        merged_rejects = None
        if totals["rejects"]:
            merged_rejects = rejects_key(prefix)
            self._merge_rejects(items, merged_rejects)

        failed_items = [
            {
                "item": int(item["item"]),
                "route": item.get("route"),
                "error": item.get("error"),
                "exit_code": item.get("exit_code"),
                "reason": str(item.get("reason") or "failed"),
            }
            for item in failed
        ]
        cause = None
        if status == RunStatus.FAILED:
            named = ", ".join(
                f"item {f['item']} ({f['error']}: {str(f['reason'])[:120]})"
                for f in failed_items[:_NAMED_FAILURES]
            )
            more = len(failed_items) - _NAMED_FAILURES
            cause = (
                f"{failed_total} of {planned} items failed ({failed_percent:.1f}% > tolerated "
                f"{job.tolerated_failure_percent:g}%)"
            )
            if named:
                cause += f": {named}" + (f" and {more} more" if more > 0 else "")
            if unfinished:
                cause += f"; {unfinished} items never finished"

        summary_at = summary_key(prefix)
        summary: dict[str, Any] = {
            "run_id": run_id,
            "job": job.name,
            "status": status,
            "trigger": run.get("trigger"),
            "started_at": run.get("started_at"),
            "finished_at": now_iso(),
            "planned_items": planned,
            "succeeded": len(succeeded),
            "failed": failed_total,
            "unfinished": unfinished,
            "failed_percent": round(failed_percent, 3),
            "tolerated_failure_percent": job.tolerated_failure_percent,
            "routes": routes,
            **totals,
            "output_bucket": self.settings.output_bucket,
            "output_prefix": prefix,
            "rejects_key": merged_rejects,
            "summary_uri": f"s3://{self.settings.output_bucket}/{summary_at}",
            "failed_items": failed_items,
            "fanout_error": fanout_error,
        }
        storage.put_json(self.settings.output_bucket, summary_at, summary)
        self.ledger.update_run(
            run_id,
            {
                "status": status,
                "finished_at": summary["finished_at"],
                "succeeded": len(succeeded),
                "failed": failed_total,
                "summary_key": summary_at,
                "cause": cause,
                "item_routes": routes,
                **totals,
            },
        )
        self._announce(summary)
        metrics.add_metric(name=f"Runs{status.title()}", unit="Count", value=1)
        # Per-job figures go out as a metric set of their own, made for this run: the shared
        # one lives as long as a warm container and must not collect a job dimension per run.
        per_job = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
        per_job.add_dimension(name="job", value=job.name)
        per_job.add_metric(name="ItemsSucceeded", unit=MetricUnit.Count, value=len(succeeded))
        per_job.add_metric(name="ItemsFailed", unit=MetricUnit.Count, value=failed_total)
        per_job.add_metric(name="RecordsWritten", unit=MetricUnit.Count, value=totals["records"])
        per_job.flush_metrics()
        logger.info("run finished", extra={"run_id": run_id, "status": status})
        return Outcome(status=status, run_id=run_id, cause=cause, summary=summary)

    def item_digests(self, run_id: str, redrives: int) -> list[dict[str, Any]]:
        """Every recorded item's latest state, in item order.

        Workers leave one digest per unit; a unit without one (its worker crashed, or its
        container never ran) is read item by item. Later manifests (redrives) win.
        """
        digests = self.ledger.unit_digests(run_id)
        latest: dict[int, dict[str, Any]] = {}
        for manifest in range(redrives + 1):
            units = storage.get_json(self.settings.work_bucket, manifest_key(run_id, manifest))
            unreported: list[str] = []
            for unit in units:
                reported = digests.get((manifest, int(unit["index"])))
                if reported is None:
                    unreported.extend(str(item["sk"]) for item in unit["items"])
                else:
                    latest.update((int(entry["item"]), entry) for entry in reported)
            for record in self.ledger.get_items(run_id, unreported).values():
                latest[int(record["item"])] = item_digest(record)
        return [latest[index] for index in sorted(latest)]

    def _merge_rejects(self, items: Iterable[Mapping[str, Any]], key: str) -> None:
        """One rejects file for the run, with each line's number in the whole input."""
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

    def _announce(self, summary: Mapping[str, Any]) -> None:
        detail = {k: v for k, v in summary.items() if k != "failed_items"}
        events.put_event(
            self.settings.event_bus_name,
            EVENT_SOURCE,
            RUN_FINISHED,
            json.dumps(detail, default=str),
        )
