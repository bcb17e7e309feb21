"""Shared fixtures for the template tests: the decoded template, the SAM CLI and one sam build.

The build runs once per test session, even under pytest-xdist: the first worker builds into the
session's shared temporary directory under a file lock and the others reuse its result.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.template_model import TEMPLATE, load_template, project_template, resources_of_type

REPO = Path(__file__).resolve().parents[2]
# The project's minimum Python (requires-python), so every development machine has it.
BUILD_RUNTIME = "python3.11"
BUILD_TIMEOUT_SECONDS = 600
# What sam build leaves in the working tree when it falls back to its defaults.
SAM_LEFTOVERS = (".aws-sam", "build.toml")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "function_id" in metafunc.fixturenames:
        functions = sorted(resources_of_type(project_template(), "AWS::Serverless::Function"))
        metafunc.parametrize("function_id", functions)


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return project_template()


@pytest.fixture(scope="session")
def sam_cli() -> Path:
    """The SAM CLI from $SAM_CLI (set by the Makefile) or the project's .venv-sam."""
    configured = os.environ.get("SAM_CLI")
    path = Path(configured) if configured else REPO / ".venv-sam" / "bin" / "sam"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"SAM CLI not found at {path}: run `make .venv-sam/.installed` or set SAM_CLI")
    return path


def _sam_environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(
        {
            "SAM_CLI_TELEMETRY": "0",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
    )
    # The venv's own interpreter settings must not reach the SAM CLI's separate venv.
    environment.pop("VIRTUAL_ENV", None)
    environment.pop("PYTHONPATH", None)
    return environment


@pytest.fixture(scope="session")
def sam(sam_cli: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a SAM CLI command from the repository root, offline and without telemetry."""

    def run(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(sam_cli), *arguments],
            cwd=REPO,
            env=_sam_environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@dataclass(frozen=True)
class SamBuild:
    directory: Path
    template: dict[str, Any]
    left_in_repository: list[str]

    def artifact(self, logical_id: str) -> Path:
        """The built directory of a function or layer, as the built template names it."""
        properties = self.template["Resources"][logical_id]["Properties"]
        uri = properties.get("CodeUri") or properties["ContentUri"]
        return self.directory / uri

    def layers(self) -> list[str]:
        return sorted(resources_of_type(self.template, "AWS::Serverless::LayerVersion"))

    def layers_of(self, function_id: str) -> list[str]:
        """The function's layers in order: its own Layers, else those in Globals."""
        properties = self.template["Resources"][function_id]["Properties"]
        layers = properties.get("Layers")
        if layers is None:
            layers = self.template.get("Globals", {}).get("Function", {}).get("Layers", [])
        return [layer["Ref"] for layer in layers]

    def opt_python(self, function_id: str) -> list[Path]:
        """What Lambda mounts under /opt/python for the function, in layer order."""
        return [self.artifact(layer) / "python" for layer in self.layers_of(function_id)]


def _shared_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker has basetemp/<session>/popen-gwN; the session directory is shared.
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def sam_build(sam_cli: Path, tmp_path_factory: pytest.TempPathFactory) -> SamBuild:
    """`sam build` of the real template into a temporary directory, once per session."""
    root = _shared_directory(tmp_path_factory) / "sam-build"
    root.mkdir(exist_ok=True)
    build_dir = root / "build"
    outcome_file = root / "outcome.json"
    with (root / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not outcome_file.exists():
            outcome_file.write_text(json.dumps(_run_sam_build(sam_cli, root, build_dir)))
        outcome = json.loads(outcome_file.read_text())
    if outcome["returncode"] != 0:
        pytest.fail(f"sam build failed ({outcome['returncode']}):\n{outcome['output']}")
    return SamBuild(
        directory=build_dir,
        template=load_template(build_dir / "template.yaml"),
        left_in_repository=outcome["left_in_repository"],
    )


def _run_sam_build(sam_cli: Path, root: Path, build_dir: Path) -> dict[str, Any]:
    existed = {name for name in SAM_LEFTOVERS if (REPO / name).exists()}
    command = [
        str(sam_cli),
        "build",
        "--template-file",
        str(TEMPLATE),
        "--build-dir",
        str(build_dir),
        # samconfig.toml turns caching on; a cache would land in the repository's .aws-sam.
        "--no-cached",
        "--cache-dir",
        str(root / "cache"),
        "--parameter-overrides",
        f"PythonRuntime={BUILD_RUNTIME}",
    ]
    completed = subprocess.run(
        command,
        cwd=REPO,
        env=_sam_environment(),
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    return {
        "returncode": completed.returncode,
        "output": completed.stdout + completed.stderr,
        "command": command,
        "left_in_repository": sorted(
            name for name in SAM_LEFTOVERS if name not in existed and (REPO / name).exists()
        ),
    }


@pytest.fixture(scope="session")
def lambda_python() -> Path:
    """An interpreter of the build's runtime, outside any virtual environment."""
    version = BUILD_RUNTIME.removeprefix("python")
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        candidate = Path(sys.base_prefix) / "bin" / BUILD_RUNTIME
        if candidate.is_file():
            return candidate
    found = shutil.which(BUILD_RUNTIME)
    if found is None:
        pytest.fail(f"{BUILD_RUNTIME} is not on PATH; sam build needs it too")
    return Path(found)


@pytest.fixture(scope="session")
def runtime_provided(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the Lambda Python runtime ships besides the stdlib: boto3 and its dependencies.

    Symlinks into this environment's copies, so the import test sees exactly those packages
    and nothing else from the virtual environment.
    """
    directory = tmp_path_factory.mktemp("lambda-runtime")
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"):
        __import__(name)
        module = sys.modules[name]
        source = Path(module.__file__ or "")
        source = source.parent if source.name == "__init__.py" else source
        (directory / source.name).symlink_to(source)
    return directory
