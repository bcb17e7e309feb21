"""Custom resource: the uploads rule matches the deployed jobs' prefixes and suffixes."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from stepburst import upload_rule
from stepburst.custom_resources import respond
from stepburst.jobs import JobCatalog
from stepburst.observability import logger
from stepburst.settings import settings

SETTINGS = settings()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    properties = event.get("ResourceProperties", {})
    rule_name = str(properties.get("RuleName", ""))
    bucket = str(properties.get("InputBucket", ""))
    # Deleting the stack deletes the rule with it: nothing to undo.
    if event["RequestType"] == "Delete":
        return respond(event, f"{rule_name}/pattern", dict)
    # The catalog is read per request: an invalid job file fails the deploy, naming the field.
    return respond(
        event,
        f"{rule_name}/pattern",
        lambda: upload_rule.sync(rule_name, bucket, JobCatalog.from_directory(SETTINGS.jobs_dir)),
    )
