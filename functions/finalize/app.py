"""Finalize a run from the ledger: the coordinator's last state."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepburst.components import finalizer
from stepburst.observability import bind_run, logger, metrics, tracer
from stepburst.payloads import FinalizePayload

FINALIZER = finalizer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=FinalizePayload)
def lambda_handler(event: FinalizePayload, context: LambdaContext) -> dict[str, Any]:
    bind_run(event.plan.get("run_id"), event.plan.get("job"))
    return FINALIZER.finalize(event.plan, event.fanout, event.combine).to_state()
