"""`stepburst image`: the commands it would run, built without a container engine or AWS."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stepburst import release
from stepburst.jobs_digest import jobs_digest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
REPOSITORY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/stepburst-workerrepository-abc"


def on_path(*names: str) -> release.Which:
    return lambda name: f"/usr/bin/{name}" if name in names else None


def project(tmp_path: Path) -> Path:
    """A copy of what the image is built from, and the project's samconfig.toml."""
    root = tmp_path / "project"
    for entry in (*release.CONTEXT, "samconfig.toml"):
        source = REPO / entry
        if source.is_dir():
            shutil.copytree(source, root / entry, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (root / entry).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, root / entry)
    return root


@pytest.mark.parametrize(
    ("available", "chosen"),
    [(("docker", "podman"), "docker"), (("finch", "podman"), "finch"), (("podman",), "podman")],
)
def test_the_first_engine_on_path_builds(available: tuple[str, ...], chosen: str) -> None:
    assert release.find_engine(on_path(*available)) == chosen


def test_without_an_engine_it_says_what_to_install() -> None:
    with pytest.raises(release.ReleaseError, match="docker, finch, podman"):
        release.find_engine(on_path())


def test_the_commands_build_push_and_deploy_one_immutable_tag(tmp_path: Path) -> None:
    root = project(tmp_path)
    plan = release.plan_image(
        root,
        repository_uri=REPOSITORY,
        version="0.3.0",
        architecture="ARM64",
        config_env="dev",
        which=on_path("podman", "aws", "sam"),
    )
    digest = jobs_digest(root / "jobs")

    assert plan.tag == f"0.3.0-{release.context_digest(root)[:12]}"
    assert plan.tag != "latest"
    assert plan.build() == [
        "podman",
        "build",
        "--file",
        "containers/worker/Dockerfile",
        "--platform",
        "linux/arm64",
        "--build-arg",
        f"JOBS_DIGEST={digest}",
        "--label",
        "org.opencontainers.image.version=0.3.0",
        "--tag",
        f"{REPOSITORY}:{plan.tag}",
        ".",
    ]
    password, login = plan.login()
    assert password[-4:] == ["ecr", "get-login-password", "--region", "eu-west-1"][-4:]
    assert login == [
        "podman",
        "login",
        "--username",
        "AWS",
        "--password-stdin",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    ]
    assert plan.push() == ["podman", "push", f"{REPOSITORY}:{plan.tag}"]
    assert plan.sam_build()[1:] == ["build", "--config-env", "dev"]
    # samconfig's own overrides for dev are passed again: the command line replaces them.
    assert plan.sam_deploy()[1:] == [
        "deploy",
        "--config-env",
        "dev",
        "--parameter-overrides",
        "LogRetentionDays=7",
        "LedgerRetentionDays=7",
        f"WorkerImageTag={plan.tag}",
        f"WorkerJobsDigest={digest}",
        "WorkerArchitecture=ARM64",
    ]
    # The password travels through a pipe, never on a command line.
    (login_line,) = [line for line in plan.describe() if "login" in line]
    assert " | podman login --username AWS --password-stdin " in login_line


def test_the_tag_follows_the_content_and_never_carries_a_plus(tmp_path: Path) -> None:
    root = project(tmp_path)
    before = release.context_digest(root)
    (root / "jobs" / "extra.yaml").write_text("name: extra\n", encoding="utf-8")
    after = release.context_digest(root)

    assert before != after
    assert release.image_tag("0.3.1.dev4+g1a2b3c", after) == f"0.3.1.dev4-g1a2b3c-{after[:12]}"


def test_a_jobs_change_changes_the_digest_the_image_and_stack_get(tmp_path: Path) -> None:
    root = project(tmp_path)
    which = on_path("docker", "aws", "sam")
    first = release.plan_image(root, repository_uri=REPOSITORY, version="1", which=which)
    (root / "jobs" / "yelp_scores.py").write_text("# changed\n", encoding="utf-8")
    second = release.plan_image(root, repository_uri=REPOSITORY, version="1", which=which)

    assert first.jobs != second.jobs
    assert f"JOBS_DIGEST={second.jobs}" in second.build()
    assert f"WorkerJobsDigest={second.jobs}" in second.sam_deploy()


class Recorder:
    """Stands in for subprocess.run: records each command, answers with the given codes."""

    def __init__(self, codes: dict[str, int]) -> None:
        self.codes = codes
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, argv: list[str], **options: Any) -> subprocess.CompletedProcess[bytes]:
        self.calls.append((argv, options))
        code = next((c for word, c in self.codes.items() if word in argv), 0)
        return subprocess.CompletedProcess(argv, code, stdout=b"secret-token", stderr=b"")

    def verbs(self) -> list[str]:
        return [" ".join(argv[1:3]) for argv, _ in self.calls]


def test_run_builds_pushes_then_deploys_and_feeds_the_password_on_stdin(tmp_path: Path) -> None:
    root = project(tmp_path)
    plan = release.plan_image(
        root, repository_uri=REPOSITORY, version="1", which=on_path("docker", "aws", "sam")
    )
    run = Recorder({"describe-images": 254})
    said: list[str] = []

    release.run_image(plan, run=run, say=said.append)

    assert run.verbs() == [
        "ecr describe-images",
        "build --file",
        "ecr get-login-password",
        "login --username",
        "push " + plan.image,
        "build --config-env",
        "deploy --config-env",
    ]
    login_options = run.calls[3][1]
    assert login_options["input"] == b"secret-token"
    assert not any("secret-token" in line for line in said)


def test_an_existing_tag_is_deployed_without_a_rebuild(tmp_path: Path) -> None:
    root = project(tmp_path)
    plan = release.plan_image(
        root, repository_uri=REPOSITORY, version="1", which=on_path("docker", "aws", "sam")
    )
    run = Recorder({})

    release.run_image(plan, run=run, say=lambda _: None)

    assert run.verbs() == ["ecr describe-images", "build --config-env", "deploy --config-env"]


def test_a_failed_build_stops_before_anything_is_pushed(tmp_path: Path) -> None:
    root = project(tmp_path)
    plan = release.plan_image(
        root, repository_uri=REPOSITORY, version="1", which=on_path("docker", "aws", "sam")
    )
    run = Recorder({"describe-images": 254, "--platform": 1})

    with pytest.raises(release.ReleaseError, match="the image build failed with exit code 1"):
        release.run_image(plan, run=run, say=lambda _: None)
    assert run.verbs() == ["ecr describe-images", "build --file"]


def test_a_repository_that_is_not_ecr_is_refused(tmp_path: Path) -> None:
    plan = release.plan_image(
        project(tmp_path),
        repository_uri="registry.example.com/worker",
        version="1",
        which=on_path("docker", "aws", "sam"),
    )
    with pytest.raises(release.ReleaseError, match="not an ECR repository"):
        plan.login()
