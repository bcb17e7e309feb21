"""The jobs a stack was deployed with, published where the CLI can read them.

The jobs travel to the functions in the jobs layer, which the CLI cannot open. So at each
deploy the JobSchedules custom resource (which has the layer) writes the job documents it
validated to one object of the work bucket; ``stepburst jobs`` and ``start`` read them there,
so a user without the repository sees and starts exactly the jobs the stack runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from stepburst import storage
from stepburst.errors import JobSpecError, ObjectNotFoundError, StepburstError
from stepburst.jobs import JobCatalog, parse_job
from stepburst.jobs.loader import JOB_FILE_SUFFIXES

CATALOG_KEY = "_stepburst/jobs/catalog.json"
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


def publish(bucket: str, directory: Path) -> int:
    """Write the catalog of ``directory`` to the work bucket; how many jobs it holds."""
    document = catalog_document(directory)
    storage.put_json(bucket, CATALOG_KEY, document)
    return len(document["jobs"])


def from_document(document: Any, where: str) -> JobCatalog:
    if not isinstance(document, dict) or not isinstance(document.get("jobs"), dict):
        raise JobSpecError(where, "jobs", "not a job catalog")
    return JobCatalog(
        parse_job(spec, f"{where}: {name}") for name, spec in document["jobs"].items()
    )


def read(bucket: str) -> JobCatalog:
    """The catalog the stack's last deploy published in its work bucket."""
    try:
        document = storage.get_json(bucket, CATALOG_KEY)
    except ObjectNotFoundError as error:
        raise CatalogNotPublishedError(
            f"the stack publishes no job catalog (s3://{bucket}/{CATALOG_KEY}): deploy it again, "
            "or give the job files with --jobs-dir"
        ) from error
    return from_document(document, f"s3://{bucket}/{CATALOG_KEY}")
