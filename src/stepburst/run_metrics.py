"""The figures of a finished run that the stack's dashboard and alarms read.

Published by Finalize in the ``Stepburst`` namespace with the ``service`` dimension only, so
one alarm covers every job (``ItemsFailed``), plus items by route and outcome with a
``route`` dimension. Per-job figures are Finalize's own (a ``job`` dimension).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics

from stepburst.observability import METRICS_NAMESPACE, SERVICE_NAME, MetricUnit, metrics
from stepburst.statuses import ItemStatus
from stepburst.tally import RunTally

# The routes and item outcomes the dashboard plots: its widgets name each one.
ROUTES = ("lambda", "ecs", "batch")
OUTCOMES = {ItemStatus.SUCCEEDED: "ItemsSucceeded", ItemStatus.FAILED: "ItemsFailed"}


def run_seconds(summary: Mapping[str, Any]) -> float | None:
    try:
        started = datetime.fromisoformat(str(summary["started_at"]))
        finished = datetime.fromisoformat(str(summary["finished_at"]))
    except (KeyError, ValueError):
        return None
    return max(0.0, (finished - started).total_seconds())


def publish(tally: RunTally, summary: Mapping[str, Any]) -> None:
    metrics.add_metric(name="ItemsFailed", unit=MetricUnit.Count, value=tally.failed)
    metrics.add_metric(name="ItemsSucceeded", unit=MetricUnit.Count, value=tally.succeeded)
    metrics.add_metric(
        name="RecordsRejected", unit=MetricUnit.Count, value=tally.totals.get("rejects", 0)
    )
    seconds = run_seconds(summary)
    if seconds is not None:
        metrics.add_metric(name="RunDurationSeconds", unit=MetricUnit.Seconds, value=seconds)
    for route, by_status in sorted(tally.routes.items()):
        # One metric set per route: a dimension holds one value per set.
        per_route = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
        per_route.add_dimension(name="route", value=route)
        for status, name in OUTCOMES.items():
            per_route.add_metric(name=name, unit=MetricUnit.Count, value=by_status.get(status, 0))
        per_route.flush_metrics()
