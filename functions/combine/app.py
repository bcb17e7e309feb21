"""A job's combine step: PrepareCombine (tally, skip or write the manifest) and Combine."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepburst.components import combiner
from stepburst.observability import logger, metrics, tracer
from stepburst.payloads import CombinePayload

COMBINER = combiner()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=CombinePayload)
def lambda_handler(event: CombinePayload, context: LambdaContext) -> dict[str, Any]:
    if event.action == "prepare":
        return COMBINER.prepare(event.plan or {}).to_state()
    # Its command runs with the job's role, not this function's.
    status = COMBINER.run(str(event.run_id), function_arn=context.invoked_function_arn)
    metrics.add_metric(name=f"Combine{status.title()}", unit="Count", value=1)
    return {"status": status}
