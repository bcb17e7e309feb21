"""A deploy of the local engine fails like CloudFormation's when a job file is invalid.

Its own module: one engine runs per process, and the CLI tests keep theirs for the module.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stepburst_local import LocalEngine
from stepburst_local.engine import DeployError

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_an_invalid_job_file_fails_the_local_deploy(tmp_path: Path) -> None:
    jobs_dir = tmp_path / "jobs"
    shutil.copytree(ROOT / "jobs", jobs_dir, ignore=shutil.ignore_patterns("__pycache__"))
    spec = jobs_dir / "ztf-alerts-daily.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("cron(0 6 * * ? *)", "soon"), "utf-8")
    with pytest.raises(
        DeployError, match=r"ztf-alerts-daily\.yaml: triggers\.schedule\.expression"
    ):
        LocalEngine(ROOT, jobs_dir=jobs_dir, quiet=True).start()
