"""Structured logging, tracing and metrics, shared by every handler and the worker.

Service name, namespace and log level come from the ``POWERTOOLS_*`` variables set once in the
template's ``Globals``; locally they fall back to the same names.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE_NAME = "stepburst"
METRICS_NAMESPACE = "Stepburst"

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)

logger = Logger()
tracer = Tracer()
metrics = Metrics()
