"""Engines one after another in one process, as an xdist worker runs test modules.

Each engine must plan with its own jobs directory and run its own job modules, whatever the
engine before it built: the settings and catalog a handler caches at cold start, the job
modules it imported. The order is the one that once failed: an engine whose deploy only ran
the custom resources (which read the settings without building the planner), then an engine
with another jobs directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stepburst_local import LocalEngine

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]

# The same module name in both jobs directories: only the file tells them apart.
PROBE_MODULE = """
from collections.abc import Mapping
from typing import Any

JOBS = {label!r}


def work(item: str, params: Mapping[str, str]) -> dict[str, Any]:
    return {{"item": item, "jobs": JOBS}}


def total(manifest_key: str, params: Mapping[str, str]) -> dict[str, Any]:
    return {{"jobs": JOBS}}
"""

PROBE_JOB = """
name: probe-{label}
description: Which jobs directory ran it.
split:
  items: {{}}
run:
  function: isolation_probe:work
combine:
  function: isolation_probe:total
compute:
  platform: lambda
retries: 0
output:
  prefix: probes/{label}/
"""


def _jobs_dir(root: Path, label: str) -> Path:
    directory = root / f"jobs-{label}"
    directory.mkdir()
    (directory / "isolation_probe.py").write_text(PROBE_MODULE.format(label=label))
    (directory / f"probe-{label}.yaml").write_text(PROBE_JOB.format(label=label))
    return directory


def _run_probe(engine: LocalEngine, label: str) -> dict[str, Any]:
    arn = engine.start_execution({"job": f"probe-{label}", "input": {"items": ["one"]}})
    execution = engine.wait_for_execution(arn, timeout=60)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    link = engine.ledger().execution_link(arn)
    assert link is not None
    return dict(engine.ledger().get_run(str(link["run_id"])) or {})


def test_each_engine_plans_and_runs_with_its_own_jobs_dir(tmp_path: Path) -> None:
    first = _jobs_dir(tmp_path, "first")
    second = _jobs_dir(tmp_path, "second")
    # Deployed only: its custom resources read the settings, nothing builds the planner.
    with LocalEngine(ROOT, jobs_dir=first, time_scale=0.01, quiet=True):
        pass
    with LocalEngine(ROOT, jobs_dir=second, time_scale=0.01, quiet=True) as engine:
        assert _run_probe(engine, "second")["combine_result"] == {"jobs": "second"}
    # And back, after an engine that imported the other directory's module of that name.
    with LocalEngine(ROOT, jobs_dir=first, time_scale=0.01, quiet=True) as engine:
        assert _run_probe(engine, "first")["combine_result"] == {"jobs": "first"}
