"""Domain errors. Adapters translate AWS errors into these; only the edges map them to outcomes.

A Lambda handler that raises one of these fails its Step Functions task with the class name as
the error name, so the state machine's Retry/Catch can match on it.
"""

from __future__ import annotations


class StepburstError(Exception):
    """Base class of every error stepburst raises on purpose."""


class JobSpecError(StepburstError):
    """A job file is invalid. The message names the file and the field."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        super().__init__(f"{source}: {field}: {problem}")


class InvalidInputError(StepburstError):
    """A run's input is invalid. The message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class UnknownJobError(StepburstError):
    """No job of that name exists."""


class ItemsFailedError(StepburstError):
    """One or more items of a unit failed; each failure is already in the ledger."""


class ConnectionDroppedError(StepburstError):
    """The connection to AWS dropped mid-request, after botocore's own retries. The request
    may or may not have reached AWS; trying again later is safe for the calls stepburst makes
    (its writes are idempotent), so the state machine retries it with backoff."""


class SourceChangedError(StepburstError):
    """The input object changed while a run was reading it (ETag mismatch)."""


class AwsUnavailableError(StepburstError):
    """AWS could not be reached at all: no credentials, no region, or no answer from the endpoint.

    Nothing was asked of AWS, so nothing changed there; the fix is in the caller's setup.
    """


class AwsError(StepburstError):
    """AWS answered a request with an error; ``code`` is AWS's error code.

    The adapters raise a narrower subclass where the code has a meaning of its own, and this
    class for every other code, so no ``ClientError`` leaves an adapter.
    """

    def __init__(self, message: str, *, code: str) -> None:
        self.code = code
        super().__init__(message)


class ThrottledError(AwsError):
    """AWS throttled the request; safe to retry with backoff.

    The state machine's Retry matches this name: keep it.
    """


class AccessDeniedError(AwsError):
    """AWS refused the caller: a missing permission, or credentials it does not accept."""


class ResourceNotFoundError(AwsError):
    """The AWS resource a request names does not exist."""


class ObjectNotFoundError(ResourceNotFoundError):
    """The S3 object (or its bucket or version) does not exist."""


class ExecutionNotFoundError(ResourceNotFoundError):
    """No Step Functions execution has that ARN."""


class ParameterNotFoundError(ResourceNotFoundError):
    """No SSM parameter has that name."""


class ExecutionAlreadyExistsError(AwsError):
    """An execution of that name already exists (Step Functions keeps names for 90 days)."""


class ConditionFailedError(AwsError):
    """A DynamoDB write's condition did not hold; nothing was written."""


# The errors the state machine matches by name in its Retry and Catch rules. Lambda names a
# function's error by its exception class, without the module, so renaming one of these (or
# raising another class of the same name) changes what the state machine does:
# https://docs.aws.amazon.com/step-functions/latest/dg/tutorial-handling-error-conditions.html
# tests/unit/test_error_names.py holds statemachines/*.asl.json to this tuple, both ways.
# ItemsFailedError is not here: it reaches RecoverUnit like every unit failure, and
# stepburst.failures classifies it by name as an application failure.
STATE_MACHINE_ERRORS: tuple[type[StepburstError], ...] = (ThrottledError, ConnectionDroppedError)
