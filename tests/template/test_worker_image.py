"""The worker Dockerfile stays in step with the template and with what the local engine parses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.template

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "containers" / "worker" / "Dockerfile"


def instructions(name: str) -> list[str]:
    """The arguments of every `name` instruction (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        line.split(None, 1)[1].strip()
        for line in text.splitlines()
        if line.split(None, 1)[:1] == [name]
    ]


def test_entrypoint_is_one_exec_form_line() -> None:
    # The local engine reads this line as JSON to run the worker as a local process.
    entrypoints = [
        line.split(None, 1)[1]
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("ENTRYPOINT")
    ]

    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["python", "-m", "stepburst.worker"]


def test_base_image_matches_the_default_lambda_runtime(template: dict[str, Any]) -> None:
    runtime = template["Parameters"]["PythonRuntime"]["Default"]
    version = runtime.removeprefix("python")

    (base,) = instructions("FROM")
    assert re.match(rf"python:{re.escape(version)}-slim\b", base), base


def test_installs_the_lock_file_with_its_hashes() -> None:
    copies = " ".join(instructions("COPY"))
    install = " ".join(instructions("RUN"))

    assert "src/requirements.txt /app/requirements.txt" in copies
    # Only what the lock file names, each file checked against its hash.
    assert "pip install --require-hashes --no-deps -r /app/requirements.txt" in install


def test_carries_the_jobs_digest_it_is_built_with() -> None:
    assert 'JOBS_DIGEST=""' in instructions("ARG")
    assert "STEPBURST_JOBS_DIGEST=${JOBS_DIGEST}" in instructions("ENV")
    assert "io.stepburst.jobs-digest=${JOBS_DIGEST}" in instructions("LABEL")


def test_runs_as_a_non_root_user() -> None:
    users = instructions("USER")

    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_image_copies_only_the_product_and_the_jobs() -> None:
    sources = [copy.split()[0] for copy in instructions("COPY")]
    assert sources == ["src/requirements.txt", "src/stepburst", "jobs"]
    # The build context admits nothing else (the local engine under local/ in particular).
    admitted = [
        line[1:]
        for line in (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    assert admitted == ["src/requirements.txt", "src/stepburst/", "jobs/"]
