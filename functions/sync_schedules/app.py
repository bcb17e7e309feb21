"""Custom resource, on every deploy: keep one EventBridge Scheduler schedule per scheduled job,
and publish the job catalog in the ledger for the CLI (``stepburst.job_catalogs``)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from stepburst import job_catalogs, schedules
from stepburst.custom_resources import respond
from stepburst.jobs import JobCatalog
from stepburst.observability import logger
from stepburst.settings import settings

SETTINGS = settings()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    properties = event.get("ResourceProperties", {})
    group = str(properties.get("ScheduleGroup", ""))
    target = schedules.Target(
        state_machine_arn=str(properties.get("StateMachineArn", "")),
        role_arn=str(properties.get("SchedulerRoleArn", "")),
        group=group,
    )
    if event["RequestType"] == "Delete":
        return respond(event, f"{group}/schedules", lambda: schedules.remove_all(group).as_dict())
    # The catalog is read per request: an invalid job file fails the deploy, naming the field.
    return respond(event, f"{group}/schedules", lambda: sync_jobs(target))


def sync_jobs(target: schedules.Target) -> dict[str, str]:
    catalog = JobCatalog.from_directory(SETTINGS.jobs_dir)
    synced = schedules.sync(catalog, target).as_dict()
    published = job_catalogs.publish(SETTINGS.ledger_table, SETTINGS.jobs_dir)
    return {**synced, "published_jobs": str(published)}
