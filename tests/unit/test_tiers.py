"""The directory is the tier: the check that fails a run on a mismatched tier marker."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path, PurePath

import pytest

from tests.tiers import TIER_OF_DIRECTORY, TIERS, tier_mismatch

pytestmark = pytest.mark.unit

TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("directory", sorted(TIER_OF_DIRECTORY))
def test_a_test_marked_with_its_directory_tier_passes(directory: str) -> None:
    markers = [TIER_OF_DIRECTORY[directory], "slow", "parametrize"]

    assert tier_mismatch(PurePath(directory, "test_x.py"), markers) is None


def test_the_local_engine_tests_are_their_own_tier() -> None:
    assert tier_mismatch(PurePath("local/test_cfn.py"), ["engine"]) is None
    assert tier_mismatch(PurePath("local/test_cfn.py"), ["unit"]) == (
        "tests/local/test_cfn.py: marked unit, but tests/local holds engine tests"
    )


@pytest.mark.parametrize(
    ("markers", "said"),
    [
        (["functional"], "marked functional, but tests/unit holds unit tests"),
        (["slow"], "has no tier marker, but tests/unit holds unit tests"),
        (["unit", "functional"], "marked functional, unit, but tests/unit holds unit tests"),
    ],
)
def test_a_mismatch_names_the_file_its_markers_and_its_tier(markers: list[str], said: str) -> None:
    assert tier_mismatch(PurePath("unit/test_x.py"), markers) == f"tests/unit/test_x.py: {said}"


@pytest.mark.parametrize("path", ["test_top.py", "fixtures/test_x.py", "elsewhere/a/test_x.py"])
def test_a_test_outside_the_tier_directories_is_refused(path: str) -> None:
    problem = tier_mismatch(PurePath(path), ["unit"])

    assert problem is not None
    assert "is not a tier directory" in problem


def test_every_tier_is_a_registered_marker() -> None:
    pyproject = tomllib.loads((TESTS.parent / "pyproject.toml").read_text(encoding="utf-8"))
    options = pyproject["tool"]["pytest"]["ini_options"]
    registered = {line.split(":", 1)[0].strip() for line in options["markers"]}

    assert registered >= TIERS
    assert "--strict-markers" in options["addopts"]


def test_every_directory_with_tests_is_a_tier_directory() -> None:
    directories = {path.relative_to(TESTS).parts[0] for path in TESTS.glob("*/**/test_*.py")}

    assert directories <= set(TIER_OF_DIRECTORY), directories - set(TIER_OF_DIRECTORY)


def suite_with(pytester: pytest.Pytester, marker: str) -> None:
    """A copy of the suite's tier check with one test file in tests/unit marked ``marker``."""
    options = tomllib.loads((TESTS.parent / "pyproject.toml").read_text(encoding="utf-8"))
    ini = options["tool"]["pytest"]["ini_options"]
    pytester.makepyprojecttoml(
        "[tool.pytest.ini_options]\n"
        f"addopts = {json.dumps(ini['addopts'])}\nmarkers = {json.dumps(ini['markers'])}\n"
    )
    package = pytester.mkpydir("tests")
    for name in ("conftest.py", "tiers.py"):
        (package / name).write_text((TESTS / name).read_text(encoding="utf-8"), "utf-8")
    unit = package / "unit"
    unit.mkdir()
    (unit / "__init__.py").write_text("", "utf-8")
    (unit / "test_one.py").write_text(
        f"import pytest\n\npytestmark = pytest.mark.{marker}\n\ndef test_one():\n    pass\n",
        "utf-8",
    )


def test_the_suite_stops_at_collection_on_a_mismatched_file(pytester: pytest.Pytester) -> None:
    suite_with(pytester, "functional")

    result = pytester.runpytest_subprocess()

    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*tests/unit/test_one.py: marked functional, but tests/unit holds unit tests*"]
    )
    result.assert_outcomes(errors=1)


def test_the_suite_runs_when_every_file_matches(pytester: pytest.Pytester) -> None:
    suite_with(pytester, "unit")

    result = pytester.runpytest_subprocess()

    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
