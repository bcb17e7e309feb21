"""``split.function``: the job's own code decides a run's items.

The function, ``module:function`` importable from jobs/, is called once per plan as
``f(input, params)`` with the run's input and params. It returns or yields item names
(strings), or mappings with ``name`` and an optional ``seconds`` estimate (the job's
``estimate.seconds_per_item`` otherwise). It may yield millions: each goes to the manifest as it
comes, so a generator never has its items held in memory.

Anything the function raises, and anything it yields that is not an item, fails the plan with
:class:`SplitFunctionError`, whose message names the function and the cause; the coordinator's
plan-failure path then records the run FAILED.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from numbers import Real
from pathlib import Path
from typing import Any

from stepburst.errors import StepburstError
from stepburst.jobs.model import FunctionSplit
from stepburst.records import TransformLoadError, import_job_function

# An item's name reaches containers as an environment override (8 KiB in all).
MAX_NAME_LENGTH = 1024


class SplitFunctionError(StepburstError):
    """A job's split function raised, yielded something that is not an item, or too many."""


def pieces(
    split: FunctionSplit,
    given: Mapping[str, Any],
    params: Mapping[str, str],
    seconds: float,
    jobs_dir: Path,
) -> Iterator[tuple[float, str]]:
    """``(estimated seconds, name)`` for each item the function yields, as it yields them;
    the function is the one of the job files in ``jobs_dir``."""
    reference = split.function
    try:
        function = import_job_function(reference, jobs_dir)
    except TransformLoadError as exc:
        raise SplitFunctionError(str(exc)) from exc
    try:
        produced = function(dict(given), dict(params))
        for position, value in enumerate(produced):
            if position == split.max_items:
                raise SplitFunctionError(
                    f"{reference} yielded more than this job's max_items ({split.max_items})"
                )
            yield _item(reference, position, value, seconds)
    except SplitFunctionError:
        raise
    except Exception as exc:  # the user's code: its failure is the plan's cause
        raise SplitFunctionError(f"{reference} raised {type(exc).__name__}: {exc}") from exc


def _item(reference: str, position: int, value: object, seconds: float) -> tuple[float, str]:
    name: object
    if isinstance(value, str):
        name = value
    elif isinstance(value, Mapping):
        name = value.get("name")
        estimate = value.get("seconds", seconds)
        unknown = set(value) - {"name", "seconds"}
        if unknown:
            raise SplitFunctionError(
                f"{reference}: item {position} has {sorted(unknown)}; an item is a name or "
                "a mapping with name and seconds"
            )
        if not isinstance(estimate, Real) or isinstance(estimate, bool) or estimate < 0:
            raise SplitFunctionError(
                f"{reference}: item {position}'s seconds must be a number >= 0, got {estimate!r}"
            )
        seconds = float(estimate)
    else:
        raise SplitFunctionError(
            f"{reference}: item {position} is {type(value).__name__}; yield a name or a "
            "mapping with name and seconds"
        )
    if not isinstance(name, str) or not name:
        raise SplitFunctionError(f"{reference}: item {position} has no name (a non-empty string)")
    if len(name) > MAX_NAME_LENGTH:
        raise SplitFunctionError(
            f"{reference}: item {position}'s name is {len(name)} characters, over {MAX_NAME_LENGTH}"
        )
    return seconds, name
