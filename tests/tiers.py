"""The test tiers. A test's directory is its tier, and its tier marker must say the same, so
``-m unit`` and ``tests/unit`` always select the same tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePath

TIER_OF_DIRECTORY: dict[str, str] = {
    "unit": "unit",
    "functional": "functional",
    "local": "engine",
    "template": "template",
    "statemachine": "statemachine",
    "e2e": "e2e",
}
TIERS = frozenset(TIER_OF_DIRECTORY.values())


def tier_mismatch(relative: PurePath, markers: Iterable[str]) -> str | None:
    """What is wrong with the tiers of a test in ``relative`` (a path under tests/) that
    carries ``markers``, or None when its one tier marker is its directory's tier."""
    directory = relative.parts[0] if len(relative.parts) > 1 else "."
    declared = sorted(set(markers) & TIERS)
    expected = TIER_OF_DIRECTORY.get(directory)
    if expected is None:
        known = ", ".join(f"tests/{name}" for name in TIER_OF_DIRECTORY)
        return f"tests/{relative}: tests/{directory} is not a tier directory ({known})"
    if declared != [expected]:
        marked = f"marked {', '.join(declared)}" if declared else "has no tier marker"
        return f"tests/{relative}: {marked}, but tests/{directory} holds {expected} tests"
    return None
