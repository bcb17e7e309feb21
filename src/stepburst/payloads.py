"""The payloads the state machine sends to each function, parsed with Powertools."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stepburst.manifest import Unit
from stepburst.planning import PlanRequest
from stepburst.recovery import UnitFailure
from stepburst.triggers import parse_trigger


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanPayload(_Payload):
    trigger: Any
    execution_id: str = Field(min_length=1)
    started_at: str = Field(min_length=1)

    def to_request(self) -> PlanRequest:
        return PlanRequest(
            trigger=parse_trigger(self.trigger),
            execution_id=self.execution_id,
            started_at=self.started_at,
        )


class UnitPayload(_Payload):
    run_id: str = Field(min_length=1)
    job: str = Field(min_length=1)
    unit: Unit
    attempt: int = Field(ge=1)
    route: Literal["lambda", "ecs", "batch"]
    params: dict[str, str] = Field(default_factory=dict)


class RecoverPayload(BaseModel):
    """A unit's state when one of its attempts failed: the iteration's state, plus the report
    its route gave (``failure`` from a Catch, ``stopped`` from a container that stopped)."""

    # The iteration's state also carries what the states before wrote (the Lambda result, the
    # raw ECS/Batch error): only what recovery needs is read.
    model_config = ConfigDict(extra="ignore", frozen=True)

    run_id: str = Field(min_length=1)
    job: str = Field(min_length=1)
    unit: Unit
    attempt: int = Field(ge=1)
    route: Literal["lambda", "ecs", "batch"]
    attempts: dict[str, int] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    environment: list[dict[str, str]] = Field(default_factory=list)
    failure: dict[str, Any] | None = None
    stopped: dict[str, Any] | None = None

    def to_failure(self) -> UnitFailure:
        return UnitFailure(
            run_id=self.run_id,
            job=self.job,
            unit=self.unit,
            route=self.route,
            attempt=self.attempt,
            attempts=self.attempts,
            params=self.params,
            environment=self.environment,
            failure=self.failure,
            stopped=self.stopped,
        )


class FinalizePayload(_Payload):
    plan: dict[str, Any]
    fanout: dict[str, Any]
    execution_id: str = Field(min_length=1)
    # The combine stage's state: its decision, and the error a Catch put there if it failed.
    combine: dict[str, Any] | None = None


class CombinePayload(_Payload):
    """PrepareCombine sends the plan; Combine sends the run to combine."""

    action: Literal["prepare", "run"]
    plan: dict[str, Any] | None = None
    run_id: str | None = None


class TaskError(BaseModel):
    """What a Catch puts at its ResultPath: the error's name and cause."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    error: str = Field(alias="Error", default="States.Runtime")
    cause: str = Field(alias="Cause", default="")


class PlanFailedPayload(PlanPayload):
    """The state machine's report that Plan failed after its retries: Plan's own payload (the
    trigger from the execution's input) and the error it caught."""

    error: TaskError


class ExecutionStatusDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    execution_arn: str = Field(alias="executionArn", min_length=1)
    status: str
    error: str | None = None
    cause: str | None = None


class ExecutionStatusChange(BaseModel):
    """EventBridge's "Step Functions Execution Status Change" event (the fields read here):
    https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html"""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    detail_type: str = Field(alias="detail-type")
    detail: ExecutionStatusDetail
