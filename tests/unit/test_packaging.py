"""The package's declared dependencies and the pins shipped to Lambda and the worker agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def pinned() -> dict[str, str]:
    pins = {}
    for raw in (REPO / "src" / "requirements.txt").read_text(encoding="utf-8").splitlines():
        text = raw.split("#", 1)[0].strip()
        if text:
            requirement = Requirement(text)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"{text}: pin an exact version"
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def test_every_runtime_dependency_is_pinned_within_its_declared_range() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {
        canonicalize_name(req.name): req
        for req in (Requirement(text) for text in project["dependencies"])
    }
    pins = pinned()
    assert set(declared) <= set(pins), "each dependency needs a pin in src/requirements.txt"
    for name, requirement in declared.items():
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is out of range"


def test_development_installs_the_same_pins() -> None:
    dev = (REPO / "requirements-dev.txt").read_text(encoding="utf-8")
    assert re.search(r"^-r src/requirements\.txt$", dev, re.MULTILINE)
