"""Where a run and each of its items write in the output bucket.

A job gives either ``output.prefix`` (every run writes under ``<prefix><run id>/``) or
``output.key``, a template (:mod:`stepburst.jobs.output_keys`). A template's run values are
fixed when the run is planned and kept on the run record (``output_values``), so every unit,
the combine step and Finalize render the same folders, and a redrive writes where the run did.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from stepburst.jobs import Job
from stepburst.jobs.output_keys import ITEM_VARIABLE, render, run_template
from stepburst.layout import output_prefix
from stepburst.manifest import Item

# {date} when the job does not split by date: the day the run was planned, in UTC.
RUN_DATE_FORMAT = "%Y%m%d"


def run_values(
    job: Job, run_id: str, params: Mapping[str, str], day: str | None = None
) -> dict[str, str]:
    """A run's template values: its params, date (a date split's day, else today in UTC),
    run id and job."""
    if day is None:
        day = datetime.now(UTC).strftime(RUN_DATE_FORMAT)
    return {**params, "date": day, "run_id": run_id, "job": job.name}


def run_output_prefix(job: Job, run_id: str, values: Mapping[str, str]) -> str:
    """The run's folder: its summary and result go here, and a table's partition is it."""
    if job.output.key is None:
        assert job.output.prefix is not None
        return output_prefix(job.output.prefix, run_id)
    return render(run_template(job.output.key), values)


def item_output_prefix(job: Job, run_prefix: str, values: Mapping[str, str], item: Item) -> str:
    """Where one item writes: the run's folder, or the key rendered with ``{item}``."""
    if job.output.key is None or "{" + ITEM_VARIABLE + "}" not in job.output.key:
        return run_prefix
    name = item.value if item.value is not None else str(item.index)
    return render(job.output.key, {**values, ITEM_VARIABLE: name})
