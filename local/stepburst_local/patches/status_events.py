"""Step Functions -> EventBridge: "Step Functions Execution Status Change" events.

https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html

On AWS every Standard execution sends one to the default event bus of its account and region
when it starts (RUNNING) and when it ends (SUCCEEDED, FAILED, TIMED_OUT, ABORTED); Express
executions send none. The child workflow executions of a Distributed Map are executions of
their own, with their own ARNs under the Map Run's labelled state machine
(``stateMachine:<name>/<label>``): those of type STANDARD send them too, those of type
EXPRESS do not. moto sends none, so rules on these events never fire.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from stepburst_local import ids
from stepburst_local.moto_internals import (
    BaseExecutionWorkerCommunication,
    ExecutionWorker,
    ProgramStopped,
    to_json_str,
)
from stepburst_local.patches.events import send_to_default_bus
from stepburst_local.patching import Hook, patch

LOG = logging.getLogger(__name__)

SOURCE = "aws.states"
DETAIL_TYPE = "Step Functions Execution Status Change"
PAYLOAD_LIMIT_BYTES = 248 * 1024
"""Above this (escaped) size the event leaves the output out, then the input."""

_REDRIVE_REASONS = {
    "RUNNING": "Execution is RUNNING and cannot be redriven",
    "SUCCEEDED": "Execution is SUCCEEDED and cannot be redriven",
}

execution_status_events = Hook(
    "execution_status_events",
    why="Step Functions sends a 'Step Functions Execution Status Change' event to the default "
    "bus when a Standard execution starts and when it ends (a Distributed Map's Standard "
    "children included, with StopExecution's error and cause when aborted); moto sends none, "
    "so rules on them never fire.",
    upstream="no upstream issue found",
)


@patch(execution_status_events, ExecutionWorker, "_execution_logic")
def _execution_logic(original: Any, self: Any) -> None:
    # Sent from the execution's own thread, so RUNNING always comes before the end.
    execution = getattr(self._execution_communication, "execution", None)
    if execution is not None:
        _send_execution_status(execution, "RUNNING")
    original(self)


@patch(execution_status_events, BaseExecutionWorkerCommunication, "terminated")
def _terminated(original: Any, self: Any) -> None:
    original(self)
    _send_execution_status(self.execution, str(self.execution.status))


def _send_execution_status(execution: Any, status: str) -> None:
    # Best effort, as on AWS: the execution never fails because of its event. An input or
    # output that JSON cannot encode drops the event; anything else is the engine's own bug.
    try:
        _send_status_of(execution, status)
    except (TypeError, ValueError) as error:
        LOG.warning("the %s event of %s is dropped: %s", status, execution.exec_arn, error)


def _send_status_of(execution: Any, status: str) -> None:
    # moto gives every execution sm_type STANDARD; the state machine's type is the real one.
    if getattr(execution.state_machine, "type", "STANDARD") == "EXPRESS":
        return
    error, cause = execution.error, execution.cause
    if status == "ABORTED":
        ended = execution.exec_worker.env.program_state()
        if isinstance(ended, ProgramStopped):
            error, cause = ended.error or None, ended.cause or None
    event = status_change_event(
        account_id=execution.account_id,
        region=execution.region_name,
        execution_arn=execution.exec_arn,
        state_machine_arn=execution.state_machine_arn,
        name=execution.name,
        status=status,
        start=execution.start_date,
        stop=execution.stop_date if status != "RUNNING" else None,
        input_json=to_json_str(execution.input_data, separators=(",", ":")),
        output_json=(
            to_json_str(execution.output, separators=(",", ":")) if status == "SUCCEEDED" else None
        ),
        error=error,
        cause=cause,
    )
    send_to_default_bus(execution.account_id, execution.region_name, event)


def send_child_status(
    *,
    account_id: str,
    region: str,
    execution_arn: str,
    state_machine_arn: str,
    name: str,
    status: str,
    start: datetime.datetime,
    stop: datetime.datetime | None,
    input_value: Any,
    output_value: Any,
    error: str | None,
    cause: str | None,
) -> None:
    """The status change of a Distributed Map's child workflow execution (type STANDARD)."""
    try:
        event = status_change_event(
            account_id=account_id,
            region=region,
            execution_arn=execution_arn,
            state_machine_arn=state_machine_arn,
            name=name,
            status=status,
            start=start,
            stop=stop,
            input_json=to_json_str(input_value, separators=(",", ":")),
            output_json=(
                to_json_str(output_value, separators=(",", ":")) if status == "SUCCEEDED" else None
            ),
            error=error,
            cause=cause,
        )
    except (TypeError, ValueError) as problem:  # not JSON: the child never fails on its event
        LOG.warning("the %s event of %s is dropped: %s", status, execution_arn, problem)
        return
    send_to_default_bus(account_id, region, event)


def status_change_event(
    *,
    account_id: str,
    region: str,
    execution_arn: str,
    state_machine_arn: str,
    name: str,
    status: str,
    start: datetime.datetime,
    stop: datetime.datetime | None,
    input_json: str | None,
    output_json: str | None,
    error: str | None,
    cause: str | None,
) -> dict[str, Any]:
    """The event Step Functions sends when an execution's status changes, field for field."""
    input_details = {"included": True}
    output_details: dict[str, bool] | None = None if output_json is None else {"included": True}
    # "If the combined escaped input and escaped output sent to EventBridge exceeds 248 KiB,
    # then the input will be excluded. Similarly, if the escaped output exceeds 248 KiB, then
    # the output will be excluded." (cw-events.html)
    if output_json is not None and _escaped(output_json) > PAYLOAD_LIMIT_BYTES:
        output_json, output_details = None, {"included": False}
    if _escaped(input_json) + _escaped(output_json) > PAYLOAD_LIMIT_BYTES:
        input_json, input_details = None, {"included": False}
    redrivable = status in ("FAILED", "TIMED_OUT", "ABORTED")
    now = datetime.datetime.now(tz=datetime.UTC).replace(microsecond=0)
    return {
        "version": "0",
        "id": str(ids.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": account_id,
        "time": now.isoformat().replace("+00:00", "Z"),
        "region": region,
        "resources": [execution_arn],
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": state_machine_arn,
            "name": name,
            "status": status,
            "startDate": _epoch_millis(start),
            "stopDate": _epoch_millis(stop),
            "input": input_json,
            "inputDetails": input_details,
            "output": output_json,
            "outputDetails": output_details,
            "error": error,
            "cause": cause,
            "redriveCount": 0,
            "redriveDate": None,
            "redriveStatus": "REDRIVABLE" if redrivable else "NOT_REDRIVABLE",
            "redriveStatusReason": _REDRIVE_REASONS.get(status),
        },
    }


def _escaped(text: str | None) -> int:
    return 0 if text is None else len(json.dumps(text).encode())


def _epoch_millis(moment: datetime.datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


HOOKS = (execution_status_events,)
