"""Keep the uploads rule in step with the job files: only keys a job takes start a run.

The input bucket sends every Object Created event to EventBridge; the stack's uploads rule
starts the state machine only for the prefixes and suffixes the deployed jobs declare, so an
upload elsewhere in the bucket costs no execution. Run on every deploy that changes the jobs
by a CloudFormation custom resource (and by the local engine when it starts). An upload that
still reaches Plan and matches nothing (a job removed since) is recorded IGNORED there.

A prefix and a suffix together are one wildcard filter on the key; ``*`` and ``\\`` in a
job's own prefix or suffix are escaped, so they match only themselves:
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
"""

from __future__ import annotations

import json
from typing import Any

from stepburst.adapters import events
from stepburst.jobs import JobCatalog
from stepburst.observability import logger

UPLOAD_SOURCE = "aws.s3"
UPLOAD_DETAIL_TYPE = "Object Created"
# A key always exists, so this filter lets nothing through: the rule of a stack without jobs
# that take uploads (EventBridge refuses an empty list of filters).
NO_KEY: dict[str, Any] = {"exists": False}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*")


def key_filters(catalog: JobCatalog) -> list[dict[str, Any]]:
    """One filter per distinct (prefix, suffix) of the jobs' S3 triggers, in a stable order."""
    pairs = sorted(
        {(trigger.prefix, trigger.suffix) for job in catalog for trigger in job.triggers.s3}
    )
    return [
        {"wildcard": f"{_escape(prefix)}*{_escape(suffix)}"} if suffix else {"prefix": prefix}
        for prefix, suffix in pairs
    ] or [NO_KEY]


def upload_pattern(bucket: str, catalog: JobCatalog) -> dict[str, Any]:
    return {
        "source": [UPLOAD_SOURCE],
        "detail-type": [UPLOAD_DETAIL_TYPE],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": key_filters(catalog)}},
    }


def sync(rule_name: str, bucket: str, catalog: JobCatalog) -> dict[str, str]:
    """Put the rule's pattern; return it as CloudFormation takes custom resource data."""
    pattern = json.dumps(upload_pattern(bucket, catalog), sort_keys=True)
    events.put_rule_pattern(rule_name, pattern)
    logger.info("uploads rule in sync", extra={"rule": rule_name, "pattern": pattern})
    return {"RuleName": rule_name, "EventPattern": pattern}
