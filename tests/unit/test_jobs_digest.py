"""The jobs digest the worker image and the Lambda layer are compared by."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stepburst.jobs_digest import JobsMismatchError, check_worker_jobs, jobs_digest

pytestmark = pytest.mark.unit

JOBS = Path(__file__).resolve().parents[2] / "jobs"


def copy_of_jobs(tmp_path: Path) -> Path:
    target = tmp_path / "jobs"
    shutil.copytree(JOBS, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_the_layer_and_the_source_directory_hash_alike(tmp_path: Path) -> None:
    source = copy_of_jobs(tmp_path)
    layer = tmp_path / "layer"
    shutil.copytree(source, layer)
    # What sam build adds to the layer besides the job files: compiled files, and the
    # packages jobs/requirements.txt installs (a top-level module listed in its RECORD).
    (layer / "__pycache__").mkdir()
    (layer / "__pycache__" / "yelp_scores.cpython-311.pyc").write_bytes(b"\0")
    (layer / "six.py").write_text("# installed\n", encoding="utf-8")
    (layer / "six-1.17.0.dist-info").mkdir()
    (layer / "six-1.17.0.dist-info" / "RECORD").write_text("six.py,sha256=x,1\n", "utf-8")

    assert jobs_digest(layer) == jobs_digest(source)


@pytest.mark.parametrize(
    "change",
    ["edit a spec", "edit a module", "add a job", "remove a job", "rename a job"],
)
def test_any_change_to_a_job_changes_the_digest(tmp_path: Path, change: str) -> None:
    jobs = copy_of_jobs(tmp_path)
    before = jobs_digest(jobs)
    spec = jobs / "dam-periods.yaml"
    if change == "edit a spec":
        spec.write_text(spec.read_text(encoding="utf-8") + "\n# note\n", encoding="utf-8")
    elif change == "edit a module":
        (jobs / "yelp_scores.py").write_text("# other code\n", encoding="utf-8")
    elif change == "add a job":
        (jobs / "new.yaml").write_text("name: new\n", encoding="utf-8")
    elif change == "remove a job":
        spec.unlink()
    else:
        spec.rename(jobs / "dam-periods-2.yaml")
    assert jobs_digest(jobs) != before


def test_a_mismatch_names_both_digests_and_the_fix(tmp_path: Path) -> None:
    jobs = copy_of_jobs(tmp_path)
    ours = jobs_digest(jobs)
    check_worker_jobs(jobs, ours)
    check_worker_jobs(jobs, None)
    check_worker_jobs(jobs, "")
    with pytest.raises(JobsMismatchError) as raised:
        check_worker_jobs(jobs, "0" * 64)
    message = str(raised.value)
    assert "000000000000" in message
    assert ours[:12] in message
    assert "make image" in message
