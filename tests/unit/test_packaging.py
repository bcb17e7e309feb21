"""The package's declared dependencies, the direct pins and the lock file the Lambda layer and
the worker image install from agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "src" / "requirements.txt"
DIRECT = REPO / "src" / "requirements.in"


def pins_of(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        text = raw.split("#", 1)[0].strip().rstrip("\\").strip()
        if text and not text.startswith("--"):
            requirement = Requirement(text)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"{text}: pin an exact version"
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def locked() -> dict[str, list[str]]:
    """Each locked requirement's line and its hashes."""
    entries: dict[str, list[str]] = {}
    current = ""
    for raw in LOCK.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash="):
            entries[current].append(line.removeprefix("--hash=").rstrip(" \\"))
        else:
            current = line.rstrip(" \\")
            entries[current] = []
    return entries


def test_every_runtime_dependency_is_pinned_within_its_declared_range() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {
        canonicalize_name(req.name): req
        for req in (Requirement(text) for text in project["dependencies"])
    }
    pins = pins_of(DIRECT)
    assert set(declared) <= set(pins), "each dependency needs a pin in src/requirements.in"
    for name, requirement in declared.items():
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is out of range"


def test_the_lock_file_pins_every_direct_pin_with_hashes() -> None:
    entries = locked()
    locked_pins = pins_of(LOCK)
    for name, pinned in pins_of(DIRECT).items():
        assert locked_pins.get(name) == pinned, f"{name}: run `make lock`"
    for line, hashes in entries.items():
        assert hashes, f"{line}: no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), line
    # Transitive dependencies are locked too (pydantic's core, boto3's s3transfer, ...).
    assert {"pydantic-core", "s3transfer", "typing-extensions"} <= set(locked_pins)
    # Nothing in the file points pip at another index or a local directory.
    assert not re.search(r"^--(find-links|index-url|extra-index-url)", LOCK.read_text(), re.M)


def test_development_installs_the_same_pins() -> None:
    dev = (REPO / "requirements-dev.txt").read_text(encoding="utf-8")
    assert re.search(r"^-r src/requirements\.in$", dev, re.MULTILINE)
