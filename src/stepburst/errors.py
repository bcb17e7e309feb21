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


class ThrottledError(StepburstError):
    """AWS throttled the request; safe to retry with backoff."""


class ItemsFailedError(StepburstError):
    """One or more items of a unit failed; each failure is already in the ledger."""


class SourceChangedError(StepburstError):
    """The input object changed while a run was reading it (ETag mismatch)."""
