"""The jobs a stack was deployed with, published where the CLI can read them.

The jobs travel to the functions in the jobs layer, which the CLI cannot open. So at each
deploy the JobSchedules custom resource (which has the layer) writes the job documents it
validated to one record of the ledger; ``stepburst jobs`` and ``start`` read them there, so a
user without the repository sees and starts exactly the jobs the stack runs. The record has no
``expires_at``: it lasts until the next deploy replaces it (the work bucket's files expire).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from stepburst.adapters.dynamodb import Table
from stepburst.errors import JobSpecError, StepburstError
from stepburst.jobs import JobCatalog, parse_job
from stepburst.jobs.loader import JOB_FILE_SUFFIXES

# The ledger record's key: apart from runs, items and triggers (RUN#, TRIGGER#, EXECUTION#).
CATALOG_KEY = {"pk": "CATALOG#jobs", "sk": "CATALOG"}
CATALOG_VERSION = 1


class CatalogNotPublishedError(StepburstError):
    """The stack has no published job catalog (deployed before it was published)."""


def catalog_document(directory: Path) -> dict[str, Any]:
    """The job files of ``directory`` as one document, validated first."""
    catalog = JobCatalog.from_directory(directory)
    documents = {
        path.stem: yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted(directory.iterdir())
        if path.suffix in JOB_FILE_SUFFIXES
    }
    return {
        "catalog_version": CATALOG_VERSION,
        "jobs": {job.name: documents[job.name] for job in catalog},
    }


def publish(ledger_table: str, directory: Path) -> int:
    """Write the catalog of ``directory`` to the ledger; how many jobs it holds."""
    document = catalog_document(directory)
    # As JSON text: a job's numbers stay as written, with no float-to-Decimal round trip.
    Table(ledger_table).put({**CATALOG_KEY, "catalog": json.dumps(document)})
    return len(document["jobs"])


def from_document(document: Any, where: str) -> JobCatalog:
    if not isinstance(document, dict) or not isinstance(document.get("jobs"), dict):
        raise JobSpecError(where, "jobs", "not a job catalog")
    return JobCatalog(
        parse_job(spec, f"{where}: {name}") for name, spec in document["jobs"].items()
    )


def read(ledger_table: str) -> JobCatalog:
    """The catalog the stack's last deploy published in its ledger."""
    record = Table(ledger_table).get(CATALOG_KEY)
    if record is None:
        raise CatalogNotPublishedError(
            f"the stack publishes no job catalog in its ledger ({ledger_table}): deploy it "
            "again, or give the job files with --jobs-dir"
        )
    where = f"the job catalog of {ledger_table}"
    try:
        document = json.loads(str(record.get("catalog", "")))
    except ValueError as error:
        raise JobSpecError(where, "catalog", f"not JSON: {error}") from error
    return from_document(document, where)
