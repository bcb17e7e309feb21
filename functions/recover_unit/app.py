"""Record a failed unit attempt and decide, by failure class, whether and how it runs again."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepburst.components import unit_recovery
from stepburst.observability import bind_run, logger, tracer
from stepburst.payloads import RecoverPayload

RECOVERY = unit_recovery()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=RecoverPayload)
def lambda_handler(event: RecoverPayload, context: LambdaContext) -> dict[str, Any]:
    bind_run(event.run_id, event.job)
    return RECOVERY.recover(event.to_failure())
