"""The payloads the state machine sends to each function, parsed with Powertools."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stepburst.manifest import Unit
from stepburst.planning import PlanRequest
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


class FinalizePayload(_Payload):
    plan: dict[str, Any]
    fanout: dict[str, Any]
    execution_id: str = Field(min_length=1)
