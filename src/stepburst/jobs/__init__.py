"""Job specs: model, shipped JSON Schema, loader."""

from stepburst.jobs.loader import JobCatalog, load_job_file, parse_job
from stepburst.jobs.model import Job

__all__ = ["Job", "JobCatalog", "load_job_file", "parse_job"]
