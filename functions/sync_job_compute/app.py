"""Custom resource: keep each job's task definition, job definition and roles, and the own
Batch compute environment, launch template and queue of a job that has them, on every deploy."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from stepburst import job_compute
from stepburst.custom_resources import respond
from stepburst.jobs import JobCatalog
from stepburst.observability import logger
from stepburst.settings import settings

SETTINGS = settings()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    properties = event.get("ResourceProperties", {})
    physical_id = f"{properties.get('StackName', '')}/job-compute"

    def stack() -> job_compute.StackCompute:
        return job_compute.StackCompute.from_properties(properties)

    if event["RequestType"] == "Delete":
        return respond(event, physical_id, lambda: job_compute.remove_all(stack()).as_dict())
    # The catalog is read per request: an invalid job file fails the deploy, naming the field.
    return respond(
        event,
        physical_id,
        lambda: job_compute.sync(JobCatalog.from_directory(SETTINGS.jobs_dir), stack()).as_dict(),
    )
