"""How the hooks fail a state: every ``FailureEvent`` they raise is built here.

A service integration names a service's error after the SDK's exception class and words the
cause like Step Functions does; ECS, Batch and Lambda share that (:func:`service_error`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from stepburst_local.moto_internals import (
    CustomErrorName,
    EventDetails,
    FailureEvent,
    FailureEventException,
    HistoryEventType,
    MapRunFailedEventDetails,
    StatesErrorName,
    StatesErrorNameType,
    TaskFailedEventDetails,
)
from stepburst_local.shapes import modeled_errors


@dataclass(frozen=True)
class ServiceErrors:
    """How Step Functions names one service's errors (the SDK's exception classes)."""

    service: str
    """botocore's service name (``ecs``)."""
    prefix: str
    """The error names' prefix (``ECS``)."""
    base_exception: str
    """The SDK's base exception, for codes the model does not declare."""
    label: str
    """The service as the cause names it (``AmazonECS``)."""

    def error_name(self, code: str) -> str:
        """``Lambda.TooManyRequestsException`` for a modeled code, else the base exception
        (``ECS.AmazonECSException``, ``Batch.AWSBatchException``)."""
        if code in modeled_errors(self.service):
            return f"{self.prefix}.{code}"
        return f"{self.prefix}.{self.base_exception}"

    def cause(self, client_error: Any) -> str:
        response = client_error.response
        error = response.get("Error", {})
        metadata = response.get("ResponseMetadata", {})
        details = "; ".join(
            [
                f"Service: {self.label}",
                f"Status Code: {metadata.get('HTTPStatusCode', 400)}",
                f"Error Code: {error.get('Code', '')}",
                f"Request ID: {metadata.get('RequestId', '')}",
                "Proxy: null",
            ]
        )
        return f"{error.get('Message', '')} ({details})"


ECS_ERRORS = ServiceErrors("ecs", "ECS", "AmazonECSException", "AmazonECS")
BATCH_ERRORS = ServiceErrors("batch", "Batch", "AWSBatchException", "AWSBatch")
LAMBDA_ERRORS = ServiceErrors("lambda", "Lambda", "AWSLambdaException", "AWSLambda")


def task_failed(
    env: Any, task: Any, error: str, cause: str, *, states_error: bool = False
) -> FailureEventException:
    """A TaskFailed with ``error`` (``States.TaskFailed`` as the States error when asked)."""
    details = TaskFailedEventDetails(error=error, cause=cause)
    if task is not None:
        details["resource"] = task._get_sfn_resource()
        details["resourceType"] = task._get_sfn_resource_type()
    name: Any = (
        StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed)
        if states_error
        else CustomErrorName(error)
    )
    return _failure(env, name, HistoryEventType.TaskFailed, taskFailedEventDetails=details)


def service_error(env: Any, task: Any, client_error: Any, errors: ServiceErrors) -> Any:
    """The failure event of a service call that answered with an error (a botocore
    ``ClientError``), named and worded as Step Functions does."""
    code = client_error.response.get("Error", {}).get("Code", "")
    failure = task_failed(env, task, errors.error_name(code), errors.cause(client_error))
    return failure.failure_event


def from_client_errors(errors: ServiceErrors) -> Callable[..., Any]:
    """A wrapper of an integration's ``_from_error``: a service's error answer (a botocore
    ``ClientError``) named and worded as Step Functions does; anything else as moto does."""

    def from_error(original: Callable[..., Any], self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, ClientError):
            return service_error(env, self, ex, errors)
        return original(self, env, ex)

    return from_error


def map_run_failed(
    env: Any, error: StatesErrorNameType, cause: str, *, event_type: Any
) -> FailureEventException:
    """A Map Run's failure (``States.ItemReaderFailed``, ``States.ExceedToleratedFailure...``)."""
    name = StatesErrorName(typ=error)
    details = MapRunFailedEventDetails(error=name.error_name, cause=cause)
    return _failure(env, name, event_type, mapRunFailedEventDetails=details)


def _failure(env: Any, error_name: Any, event_type: Any, **details: Any) -> FailureEventException:
    # moto types EventDetails as a TypedDict with every kind of details; an event has one.
    event_details: EventDetails = dict(details)  # type: ignore[assignment]
    return FailureEventException(
        failure_event=FailureEvent(
            env=env, error_name=error_name, event_type=event_type, event_details=event_details
        )
    )
