"""Every status stepburst writes or reads, one enum per kind of thing that has one.

The values are the strings the ledger already holds and the state machine compares against
(``RecordItemsFailed`` writes ``FAILED`` into item records, ``HasWork`` and ``RunOutcome``
choose on a plan's and a run's status): never change a value, add a member instead.
``tests/unit/test_statuses.py`` checks each status the ASL uses against these.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """A run record's ``status`` in the ledger, and the Finalize state's verdict."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


# A run in one of these is over: it can be redriven, and watching it stops.
TERMINAL_RUN_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})


class ItemStatus(StrEnum):
    """An item record's ``status`` in the ledger."""

    RUNNING = "RUNNING"
    # An attempt failed and the unit will run again (RecoverUnit decided so).
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class CombineStatus(StrEnum):
    """A run record's ``combine_status``: the job's combine step, if it has one."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    # The items' failures were past the job's budget: combine did not run.
    SKIPPED = "SKIPPED"


class TriggerStatus(StrEnum):
    """A trigger record's ``status``: one run claimed it, or no job wanted it."""

    CLAIMED = "CLAIMED"
    IGNORED = "IGNORED"
    # The claiming execution ended before its run could start: a redelivery may claim it.
    RELEASED = "RELEASED"


class PlanStatus(StrEnum):
    """What the Plan state decided; the state machine's ``HasWork`` chooses on it."""

    PLANNED = "PLANNED"
    DUPLICATE = "DUPLICATE"
    IGNORED = "IGNORED"


class ExecutionStatus(StrEnum):
    """A Step Functions execution's status, as DescribeExecution reports it.

    https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
    """

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"
    PENDING_REDRIVE = "PENDING_REDRIVE"


class CustomResourceStatus(StrEnum):
    """What a custom resource answers CloudFormation."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
