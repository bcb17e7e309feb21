"""Plan refuses to plan when the worker image was built from other jobs than the layer's."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepburst import components
from stepburst.jobs_digest import JobsMismatchError, jobs_digest, layer_digest

from .handlers import invoke
from .test_coordinator import plan_payload
from .test_job_kinds import jobs

pytestmark = pytest.mark.functional

__all__ = ["jobs"]

TRIGGER = {"job": "dam-periods", "input": {"items": "Dam001/Period01-02"}}


@pytest.fixture(autouse=True)
def fresh_layer_digest() -> None:
    layer_digest.cache_clear()


def test_a_plan_with_the_images_jobs_goes_ahead(
    jobs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPBURST_WORKER_JOBS_DIGEST", jobs_digest(jobs))
    components.reset()
    assert invoke("plan", plan_payload(TRIGGER))["status"] == "PLANNED"


def test_a_plan_with_other_jobs_in_the_image_fails_with_its_cause(
    jobs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPBURST_WORKER_JOBS_DIGEST", jobs_digest(jobs))
    (jobs / "dam-periods.yaml").write_text(
        (jobs / "dam-periods.yaml").read_text(encoding="utf-8") + "retries: 5\n", "utf-8"
    )
    components.reset()
    with pytest.raises(JobsMismatchError, match=r"make image"):
        invoke("plan", plan_payload(TRIGGER))
    # Nothing was written for the run.
    assert not components.ledger().list_runs("dam-periods")
