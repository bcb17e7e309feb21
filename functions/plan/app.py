"""Plan a run: the coordinator's first state."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepburst.components import planner
from stepburst.observability import logger, metrics, tracer
from stepburst.payloads import PlanPayload

PLANNER = planner()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=PlanPayload)
def lambda_handler(event: PlanPayload, context: LambdaContext) -> dict[str, Any]:
    return PLANNER.plan(event.to_request()).to_state()
