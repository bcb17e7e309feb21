"""Bring the ledger to the end an execution reached outside Finalize.

Two callers: the state machine when Plan failed (it releases the trigger's claim and records
the run FAILED), and an EventBridge rule on executions that ended FAILED, TIMED_OUT or ABORTED.
"""

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepburst.components import reconciler
from stepburst.observability import bind_run, logger, tracer
from stepburst.payloads import ExecutionStatusChange, PlanFailedPayload
from stepburst.planning import run_of

RECONCILER = reconciler()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "detail-type" in event:
        change = parse(event=event, model=ExecutionStatusChange)
        detail = change.detail
        reconciled = RECONCILER.execution_ended(
            detail.execution_arn, detail.status, detail.error or "", detail.cause or ""
        )
    else:
        failed = parse(event=event, model=PlanFailedPayload)
        bind_run(*run_of(failed.to_request(), RECONCILER.planner))
        reconciled = RECONCILER.plan_failed(
            failed.to_request(), failed.error.error, failed.error.cause
        )
    bind_run(reconciled.run_id)
    return reconciled.to_state()
