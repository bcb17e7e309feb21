"""Custom resource: keep one Glue table per job that declares output.table, on every deploy."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from stepburst import tables
from stepburst.custom_resources import respond
from stepburst.jobs import JobCatalog
from stepburst.observability import logger
from stepburst.settings import settings

SETTINGS = settings()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    properties = event.get("ResourceProperties", {})
    database = str(properties.get("DatabaseName", ""))
    bucket = str(properties.get("OutputBucket", ""))
    if event["RequestType"] == "Delete":
        return respond(event, f"{database}/tables", lambda: tables.remove_all(database))
    # The catalog is read per request: an invalid job file fails the deploy, naming the field.
    return respond(
        event,
        f"{database}/tables",
        lambda: tables.sync(
            JobCatalog.from_directory(SETTINGS.jobs_dir), database, bucket, SETTINGS.jobs_dir
        ),
    )
