"""Finalize a run from the ledger: the coordinator's last state."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepburst.components import finalizer
from stepburst.observability import logger, metrics, tracer
from stepburst.payloads import FinalizePayload

FINALIZER = finalizer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=FinalizePayload)
def lambda_handler(event: FinalizePayload, context: LambdaContext) -> dict[str, Any]:
    return FINALIZER.finalize(event.plan, event.fanout, event.combine).to_state()
