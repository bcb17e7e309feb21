"""Structured logging, tracing and metrics, shared by every handler and the worker.

Service name, namespace and log level come from the ``POWERTOOLS_*`` variables set once in the
template's ``Globals``; locally they fall back to the same names.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE_NAME = "stepburst"
METRICS_NAMESPACE = "Stepburst"

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)

logger = Logger()
tracer = Tracer()
metrics = Metrics()

__all__ = [
    "METRICS_NAMESPACE",
    "SERVICE_NAME",
    "MetricUnit",
    "bind_run",
    "logger",
    "metrics",
    "tracer",
]


def bind_run(run_id: str | None, job: str | None = None) -> None:
    """Name the run (and its job) on every log line that follows, as the correlation id, and
    as X-Ray annotations, so one search finds a run's lines and traces across functions and
    containers. Handlers clear the keys at each invocation (``clear_state``)."""
    keys = {name: value for name, value in (("run_id", run_id), ("job", job)) if value}
    if not keys:
        return
    logger.append_keys(**keys)
    if run_id:
        logger.set_correlation_id(run_id)
    for name, value in keys.items():
        tracer.put_annotation(key=name, value=value)
