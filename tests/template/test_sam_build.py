"""`sam build` packages every function so that its handler imports the way Lambda loads it.

Each handler is imported in a fresh, isolated interpreter whose path holds only what Lambda puts
there: the function's own directory, the layers' python/ directories (/opt/python) and the boto3
the runtime ships. Nothing from the test environment may leak in.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import SamBuild

pytestmark = [pytest.mark.template, pytest.mark.slow]

# Packages the test environment has and Lambda does not.
MUST_NOT_LEAK = ("moto", "pytest", "cfnlint", "hypothesis")

# Runs in the isolated child; prints where things came from so the test can check it.
IMPORT_HANDLER = """
import importlib, importlib.util, json, sys
sys.path[:0] = json.loads(sys.argv[1])
leaked = [name for name in json.loads(sys.argv[2]) if importlib.util.find_spec(name)]
if leaked:
    raise SystemExit(f"test-environment packages visible to the handler: {leaked}")
app = importlib.import_module("app")
import stepburst
print(json.dumps({
    "app": app.__file__,
    "stepburst": stepburst.__file__,
    "handler_callable": callable(getattr(app, "lambda_handler", None)),
}))
"""


def isolated_python(
    python: Path, code: str, paths: list[Path], environment: dict[str, str], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    # -I ignores PYTHON* variables, the user site and the script directory; -S skips
    # site-packages entirely. The child puts `paths` first on sys.path itself, like Lambda.
    return subprocess.run(
        [str(python), "-I", "-S", "-c", code, json.dumps([str(p) for p in paths]), *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def handler_environment(template: dict[str, Any], jobs_dir: Path) -> dict[str, str]:
    """Every variable the template gives the functions: parameters at their defaults, dummies
    for resource names."""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    parameters = template["Parameters"]

    def value_of(name: str, value: Any) -> str:
        if isinstance(value, str):
            return value
        ref = value.get("Ref") if isinstance(value, dict) else None
        if ref in parameters and "Default" in parameters[ref]:
            return str(parameters[ref]["Default"])
        return f"stepburst-test-{name.lower()}"

    environment = {name: value_of(name, value) for name, value in variables.items()}
    environment.update(
        {
            "STEPBURST_JOBS_DIR": str(jobs_dir),
            "STEPBURST_RETENTION_DAYS": "90",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "PATH": "/usr/bin:/bin",
        }
    )
    return environment


def test_build_writes_nothing_into_the_repository(sam_build: SamBuild) -> None:
    assert (sam_build.directory / "template.yaml").is_file()
    assert sam_build.left_in_repository == []


def test_layers_land_where_lambda_mounts_them(sam_build: SamBuild) -> None:
    for layer_id in sam_build.layers():
        assert (sam_build.artifact(layer_id) / "python").is_dir(), layer_id
    assert (sam_build.artifact("StepburstLayer") / "python/stepburst/__init__.py").is_file()


def test_handler_imports_in_a_lambda_like_interpreter(
    function_id: str,
    sam_build: SamBuild,
    lambda_python: Path,
    runtime_provided: Path,
    tmp_path: Path,
) -> None:
    function_dir = sam_build.artifact(function_id)
    jobs_dir = sam_build.artifact("JobsLayer") / "python"
    paths = [function_dir, *sam_build.opt_python(function_id), runtime_provided]

    completed = isolated_python(
        lambda_python,
        IMPORT_HANDLER,
        paths,
        handler_environment(sam_build.template, jobs_dir),
        tmp_path,
        json.dumps(MUST_NOT_LEAK),
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    origin = json.loads(completed.stdout.strip().splitlines()[-1])
    assert origin["handler_callable"] is True
    assert Path(origin["app"]).parent == function_dir
    assert Path(origin["stepburst"]).is_relative_to(sam_build.artifact("StepburstLayer"))


def test_the_isolated_interpreter_cannot_see_test_packages(
    sam_build: SamBuild, lambda_python: Path, runtime_provided: Path, tmp_path: Path
) -> None:
    # What makes the import test meaningful: moto is importable here, and not over there.
    assert __import__("moto")
    probe = (
        "import importlib.util, json, sys\n"
        "sys.path[:0] = json.loads(sys.argv[1])\n"
        "sys.exit(3 if importlib.util.find_spec('moto') is None else 0)\n"
    )
    layers = [sam_build.artifact(layer) / "python" for layer in sam_build.layers()]

    completed = isolated_python(
        lambda_python, probe, [*layers, runtime_provided], {"PATH": "/usr/bin:/bin"}, tmp_path
    )

    assert completed.returncode == 3, completed.stdout + completed.stderr


def test_layers_carry_the_product_and_not_the_local_engine(sam_build: SamBuild) -> None:
    # The emulator and its moto stay on the developer's machine: nothing of them reaches Lambda.
    for layer_id in sam_build.layers():
        site = sam_build.artifact(layer_id) / "python"
        carried = {path.name.lower() for path in site.iterdir()}
        assert "stepburst_local" not in carried, layer_id
        assert not {name for name in carried if name == "moto" or name.startswith("moto-")}
        assert not list(site.rglob("stepburst_local")), layer_id
    product = sam_build.artifact("StepburstLayer") / "python" / "stepburst"
    assert not (product / "local").exists()
    assert not (product / "samples.py").exists()


def _lock_file_pins() -> dict[str, str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    lock = Path(__file__).resolve().parents[2] / "src" / "requirements.txt"
    for raw in lock.read_text(encoding="utf-8").splitlines():
        text = raw.split("#", 1)[0].strip().rstrip("\\").strip()
        if text and not text.startswith("--"):
            requirement = Requirement(text)
            (specifier,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def test_the_stepburst_layer_holds_exactly_the_lock_files_distributions(
    sam_build: SamBuild,
) -> None:
    from packaging.utils import canonicalize_name

    site = sam_build.artifact("StepburstLayer") / "python"
    installed = {}
    for dist_info in site.glob("*.dist-info"):
        name, version = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)
        installed[canonicalize_name(name)] = version

    assert installed == _lock_file_pins()
