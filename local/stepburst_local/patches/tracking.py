"""Which execution started which container, so that stopping the execution stops them."""

from __future__ import annotations

from typing import Any

from stepburst_local.binding import current


def execution_arn(env: Any) -> str:
    """The ARN of the execution an interpreter environment belongs to."""
    return str(env.states.context_object.context_object_data["Execution"]["Id"])


def started_by_execution(env: Any, kind: str, ident: tuple[str, ...]) -> None:
    """Record that the execution of ``env`` started an ECS task or a Batch job."""
    bindings = current()
    if bindings is not None:
        bindings.track(execution_arn(env), kind, ident)
