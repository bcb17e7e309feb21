"""Run one work unit on Lambda: the same runner the worker container uses."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepburst import placement
from stepburst.components import catalog, unit_runner
from stepburst.observability import MetricUnit, bind_run, logger, metrics, tracer
from stepburst.payloads import UnitPayload

CATALOG = catalog()
RUNNER = unit_runner()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=UnitPayload)
def lambda_handler(event: UnitPayload, context: LambdaContext) -> dict[str, Any]:
    bind_run(event.run_id, event.job)
    job = CATALOG.get(event.job)
    result = RUNNER.run(
        job,
        event.run_id,
        event.unit,
        attempt=event.attempt,
        route=event.route,
        params=event.params,
        placement=placement.on_lambda(context),
        # Its commands run with the job's role, not this function's.
        function_arn=context.invoked_function_arn,
    )
    metrics.add_metric(name="LambdaItemsSucceeded", unit=MetricUnit.Count, value=result.succeeded)
    return result.to_state()
