"""``stepburst image``: build the worker image, push it under an immutable tag, deploy with it.

One command, so the image and the stack's jobs layer come from the same checkout:

1. build ``containers/worker/Dockerfile`` with Docker, Finch or Podman (the first on PATH),
   with the jobs digest baked in (``STEPBURST_JOBS_DIGEST``, label ``io.stepburst.jobs-digest``);
2. log in to the stack's ECR registry (``aws ecr get-login-password`` on stdin; the password is
   never printed) and push, unless the repository already holds the tag;
3. ``sam build`` and ``sam deploy`` with ``WorkerImageTag`` and ``WorkerJobsDigest``.

The tag is the package version and a hash of everything the image is built from, so a tag
names one content for good (the repository's tags are immutable) and a rebuild of unchanged
sources reuses it. ``--dry-run`` prints the commands instead of running them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from stepburst.adapters import cloudformation
from stepburst.errors import StepburstError
from stepburst.jobs_digest import jobs_digest

ENGINES = ("docker", "finch", "podman")
DOCKERFILE = "containers/worker/Dockerfile"
# The build context the Dockerfile copies from (see its .dockerignore).
CONTEXT = ("containers/worker", "src/requirements.txt", "src/stepburst", "jobs")
PLATFORMS = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}
JOBS_LABEL = "io.stepburst.jobs-digest"
_REGISTRY = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com")

Which = Callable[[str], str | None]


class ReleaseError(StepburstError):
    """The image cannot be built or deployed as asked: says what is missing."""


def find_engine(which: Which = shutil.which) -> str:
    for engine in ENGINES:
        if which(engine):
            return engine
    raise ReleaseError(f"no container engine on PATH: install one of {', '.join(ENGINES)}")


def find_tool(name: str, root: Path, which: Which = shutil.which) -> str:
    """``sam`` from the project's .venv-sam, else PATH; ``aws`` beside this Python, else PATH."""
    candidates = [
        root / ".venv-sam" / "bin" / name,
        Path(sys.executable).parent / name,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    found = which(name)
    if found is None:
        raise ReleaseError(f"{name} is not installed (looked in .venv-sam/bin and on PATH)")
    return found


def _files(root: Path) -> Iterator[Path]:
    for entry in CONTEXT:
        path = root / entry
        if path.is_file():
            yield path
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                    yield file
        else:
            raise ReleaseError(f"{entry} is missing: run from the project's root")


def context_digest(root: Path) -> str:
    """sha256 of every file the image is built from, by path."""
    digest = hashlib.sha256()
    for file in _files(root):
        digest.update(file.relative_to(root).as_posix().encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def image_tag(version: str, context: str) -> str:
    """A tag ECR accepts: the version (``+`` and other characters made ``-``) and the content."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", version).strip(".-") or "0"
    return f"{safe}-{context[:12]}"


def deploy_overrides(root: Path, config_env: str) -> list[str]:
    """The environment's parameter_overrides from samconfig.toml: a command-line
    ``--parameter-overrides`` replaces them, so they are passed again with the tag."""
    path = root / "samconfig.toml"
    if not path.is_file():
        return []
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    section = config.get(config_env, {}).get("deploy", {}).get("parameters", {})
    overrides = section.get("parameter_overrides", "")
    return shlex.split(overrides) if isinstance(overrides, str) else [str(o) for o in overrides]


@dataclass(frozen=True, slots=True)
class ImagePlan:
    root: Path
    engine: str
    aws: str
    sam: str
    repository_uri: str
    version: str
    context: str
    jobs: str
    architecture: str
    config_env: str
    overrides: tuple[str, ...]

    @property
    def tag(self) -> str:
        return image_tag(self.version, self.context)

    @property
    def image(self) -> str:
        return f"{self.repository_uri}:{self.tag}"

    @property
    def registry(self) -> str:
        return self.repository_uri.split("/", 1)[0]

    @property
    def region(self) -> str:
        match = _REGISTRY.match(self.registry)
        if match is None:
            raise ReleaseError(f"{self.repository_uri} is not an ECR repository URI")
        return match["region"]

    @property
    def repository_name(self) -> str:
        return self.repository_uri.split("/", 1)[1]

    def tag_exists(self) -> list[str]:
        return [
            self.aws,
            "ecr",
            "describe-images",
            "--region",
            self.region,
            "--repository-name",
            self.repository_name,
            "--image-ids",
            f"imageTag={self.tag}",
        ]

    def build(self) -> list[str]:
        return [
            self.engine,
            "build",
            "--file",
            DOCKERFILE,
            "--platform",
            PLATFORMS[self.architecture],
            "--build-arg",
            f"JOBS_DIGEST={self.jobs}",
            "--label",
            f"org.opencontainers.image.version={self.version}",
            "--tag",
            self.image,
            ".",
        ]

    def login(self) -> tuple[list[str], list[str]]:
        """The password command and the login that reads it on stdin."""
        return (
            [self.aws, "ecr", "get-login-password", "--region", self.region],
            [self.engine, "login", "--username", "AWS", "--password-stdin", self.registry],
        )

    def push(self) -> list[str]:
        return [self.engine, "push", self.image]

    def sam_build(self) -> list[str]:
        return [self.sam, "build", "--config-env", self.config_env]

    def sam_deploy(self) -> list[str]:
        return [
            self.sam,
            "deploy",
            "--config-env",
            self.config_env,
            "--parameter-overrides",
            *self.overrides,
            f"WorkerImageTag={self.tag}",
            f"WorkerJobsDigest={self.jobs}",
            f"WorkerArchitecture={self.architecture}",
        ]

    def describe(self) -> list[str]:
        """Every command, as a shell would read it (the password goes through a pipe)."""
        password, login = self.login()
        return [
            shlex.join(self.tag_exists()) + "  # skip the build and push when it succeeds",
            shlex.join(self.build()),
            f"{shlex.join(password)} | {shlex.join(login)}",
            shlex.join(self.push()),
            shlex.join(self.sam_build()),
            shlex.join(self.sam_deploy()),
        ]


def plan_image(
    root: Path,
    *,
    repository_uri: str,
    version: str,
    architecture: str = "X86_64",
    config_env: str = "default",
    which: Which = shutil.which,
) -> ImagePlan:
    if architecture not in PLATFORMS:
        raise ReleaseError(f"architecture {architecture!r}: choose {' or '.join(PLATFORMS)}")
    return ImagePlan(
        root=root,
        engine=find_engine(which),
        aws=find_tool("aws", root, which),
        sam=find_tool("sam", root, which),
        repository_uri=repository_uri,
        version=version,
        context=context_digest(root),
        jobs=jobs_digest(root / "jobs"),
        architecture=architecture,
        config_env=config_env,
        overrides=tuple(
            o
            for o in deploy_overrides(root, config_env)
            if not o.startswith(("WorkerImageTag=", "WorkerJobsDigest=", "WorkerArchitecture="))
        ),
    )


Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


def _check(completed: subprocess.CompletedProcess[bytes], what: str) -> None:
    if completed.returncode != 0:
        raise ReleaseError(f"{what} failed with exit code {completed.returncode}")


def run_image(
    plan: ImagePlan, run: Runner = subprocess.run, say: Callable[[str], None] = print
) -> None:
    """Build, push and deploy; each step's output goes to the terminal, not the password."""
    exists = run(plan.tag_exists(), cwd=plan.root, capture_output=True, check=False)
    if exists.returncode == 0:
        say(f"{plan.image} is already in the repository: deploying it")
    else:
        say(f"building {plan.image} with {plan.engine}")
        _check(run(plan.build(), cwd=plan.root, check=False), "the image build")
        password_command, login = plan.login()
        password = run(password_command, cwd=plan.root, capture_output=True, check=False)
        _check(password, "aws ecr get-login-password")
        logged_in = run(
            login, cwd=plan.root, input=password.stdout, capture_output=True, check=False
        )
        _check(logged_in, f"{plan.engine} login to {plan.registry}")
        _check(run(plan.push(), cwd=plan.root, check=False), "the push")
    _check(run(plan.sam_build(), cwd=plan.root, check=False), "sam build")
    _check(run(plan.sam_deploy(), cwd=plan.root, check=False), "sam deploy")
    say(f"deployed with WorkerImageTag={plan.tag} WorkerJobsDigest={plan.jobs}")


def version(root: Path) -> str:
    """The checkout's version from its git tags (``git describe``), else the package's."""
    try:
        described = subprocess.run(
            ["git", "describe", "--tags", "--always", "--dirty"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        described = None
    if described is not None and described.returncode == 0 and described.stdout.strip():
        return described.stdout.strip().removeprefix("v")
    from stepburst import __version__

    return __version__


def stack_name(root: Path, config_env: str) -> str:
    path = root / "samconfig.toml"
    config = tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    name = config.get(config_env, {}).get("global", {}).get("parameters", {}).get("stack_name")
    if not name:
        raise ReleaseError(f"samconfig.toml names no stack_name for {config_env!r}: give --stack")
    return str(name)


def register(commands: Any) -> None:
    """Add ``image`` to the ``stepburst`` subparsers (entry point ``stepburst.commands``)."""
    image = commands.add_parser(
        "image", help="build and push the worker image, then deploy the stack with its tag"
    )
    image.add_argument("--config-env", default="default", help="the samconfig.toml environment")
    image.add_argument(
        "--architecture",
        choices=sorted(PLATFORMS),
        default="X86_64",
        help="the architecture to build the image for (default X86_64)",
    )
    image.add_argument("--project", default=".", help="the project directory")
    image.add_argument(
        "--dry-run", action="store_true", help="print the commands instead of running them"
    )
    image.set_defaults(handler=_image)


def _image(args: argparse.Namespace, out: TextIO) -> int:
    root = Path(args.project).resolve()
    # `--stack` (or $STEPBURST_STACK) wins; otherwise the environment's stack in samconfig.toml.
    given = os.environ.get("STEPBURST_STACK") or (args.stack if args.stack != "stepburst" else "")
    name = given or stack_name(root, args.config_env)
    outputs = cloudformation.stack_outputs(name)
    if "WorkerRepositoryUri" not in outputs:
        raise ReleaseError(f"stack {name!r} has no WorkerRepositoryUri output")
    plan = plan_image(
        root,
        repository_uri=outputs["WorkerRepositoryUri"],
        version=version(root),
        architecture=args.architecture,
        config_env=args.config_env,
    )
    if args.dry_run:
        for line in plan.describe():
            print(line, file=out)
        return 0
    run_image(plan, say=lambda line: print(line, file=out, flush=True))
    return 0
