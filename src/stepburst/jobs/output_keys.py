"""Output key templates: where a run writes, as ``ztf/alerts/date={date}/``.

A template holds literal text and ``{name}`` variables: ``date``, ``item``, ``run_id``,
``job`` and the job's params. The run's values are fixed when it is planned; ``item`` is each
item's own. The run's folder (its summary, its partition) is the template rendered up to the
first ``{item}``, cut back to the ``/`` before it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stepburst.jobs.model import Job

RUN_VARIABLES = ("date", "run_id", "job")
ITEM_VARIABLE = "item"
_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class FieldError(ValueError):
    """A job check that names the field it refuses, whatever model it runs in."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(problem)


def variables(template: str) -> list[str]:
    """The variables a template names, in order, each once."""
    return list(dict.fromkeys(_VARIABLE.findall(template)))


def run_template(template: str) -> str:
    """The part of a template that names the run's folder: everything before the segment
    that holds the first ``{item}``."""
    position = template.find("{" + ITEM_VARIABLE + "}")
    if position < 0:
        return template
    return template[: template.rfind("/", 0, position) + 1]


def render(template: str, values: Mapping[str, str]) -> str:
    """The template with every variable replaced; a variable without a value is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        if name not in values:
            raise KeyError(name)
        return values[name]

    return _VARIABLE.sub(replace, template)


def check_output_key(job: Job) -> None:
    """Refuse a key template that names an unknown variable, a replace that could never
    replace, and a table partitioned by what the key does not name."""
    output = job.output
    if output.key is None:
        return
    known = {*RUN_VARIABLES, ITEM_VARIABLE, *job.params}
    named = variables(output.key)
    for name in named:
        if name not in known:
            raise FieldError(
                "output.key",
                f"{{{name}}} is not a variable: use date, item, run_id, job or a declared param",
            )
    if output.replace and "run_id" in named:
        raise FieldError(
            "output.replace", "a key with {run_id} is new on every run: there is nothing to replace"
        )
    if not run_template(output.key):
        raise FieldError("output.key", "{item} cannot be in the first folder of the key")
    table = output.table
    if table is None:
        return
    run_level = variables(run_template(output.key))
    for name in table.partition_by:
        if name not in run_level:
            raise FieldError(
                "output.table.partition_by",
                f"{name!r} must be a variable of output.key before any {{item}} folder",
            )
    if not table_location(output.key):
        raise FieldError("output.key", "a table's key starts with a folder without variables")


def table_location(template: str) -> str:
    """The table's location: the template's leading folders that hold no variable."""
    position = template.find("{")
    if position < 0:
        return template
    return template[: template.rfind("/", 0, position) + 1]
