"""Plan a run: the coordinator's first state."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepburst.components import planner
from stepburst.jobs_digest import check_worker_jobs
from stepburst.observability import bind_run, logger, metrics, tracer
from stepburst.payloads import PlanPayload
from stepburst.planning import run_of

PLANNER = planner()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=PlanPayload)
def lambda_handler(event: PlanPayload, context: LambdaContext) -> dict[str, Any]:
    request = event.to_request()
    # The run is known before anything is written, so every line of the plan names it.
    bind_run(*run_of(request, PLANNER))
    check_worker_jobs(PLANNER.settings.jobs_dir, PLANNER.settings.worker_jobs_digest)
    plan = PLANNER.plan(request)
    bind_run(plan.run_id, plan.job)
    return plan.to_state()
