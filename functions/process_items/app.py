"""Run one work unit on Lambda: the same runner the worker container uses."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepburst.components import catalog, unit_runner
from stepburst.observability import logger, metrics, tracer
from stepburst.payloads import UnitPayload

CATALOG = catalog()
RUNNER = unit_runner()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=UnitPayload)
def lambda_handler(event: UnitPayload, context: LambdaContext) -> dict[str, Any]:
    job = CATALOG.get(event.job)
    result = RUNNER.run(
        job,
        event.run_id,
        event.unit,
        attempt=event.attempt,
        route=event.route,
        params=event.params,
    )
    metrics.add_metric(name="LambdaItemsSucceeded", unit="Count", value=result.succeeded)
    return result.to_state()
