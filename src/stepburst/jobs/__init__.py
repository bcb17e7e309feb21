"""Job specs: model, shipped JSON Schema, loader."""

from stepburst.jobs.loader import JobCatalog, check_for_stack, load_job_file, parse_job
from stepburst.jobs.model import Job

__all__ = ["Job", "JobCatalog", "check_for_stack", "load_job_file", "parse_job"]
