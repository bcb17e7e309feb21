"""Every cold-start cache is forgotten by one reset, whichever module built it."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from stepburst import cold_start
from stepburst.settings import settings

pytestmark = pytest.mark.unit


def test_reset_forgets_the_settings_without_the_components(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a custom resource's handler does: it reads the settings and builds nothing else.
    for name, value in {
        "STEPBURST_LEDGER_TABLE": "ledger",
        "STEPBURST_INPUT_BUCKET": "in",
        "STEPBURST_OUTPUT_BUCKET": "out",
        "STEPBURST_WORK_BUCKET": "work",
        "STEPBURST_EVENT_BUS_NAME": "bus",
        "STEPBURST_RETENTION_DAYS": "7",
        "STEPBURST_STACK_NAME": "stack",
        "STEPBURST_JOBS_DIR": str(tmp_path / "first"),
    }.items():
        monkeypatch.setenv(name, value)
    cold_start.reset()
    assert settings().jobs_dir == tmp_path / "first"

    monkeypatch.setenv("STEPBURST_JOBS_DIR", str(tmp_path / "second"))
    assert settings().jobs_dir == tmp_path / "first"  # read once, at cold start
    cold_start.reset()
    assert settings().jobs_dir == tmp_path / "second"
    cold_start.reset()


def test_a_registered_cache_is_cleared_by_reset() -> None:
    built: list[int] = []

    @cold_start.once_per_process
    @functools.cache
    def counter() -> int:
        built.append(1)
        return len(built)

    assert counter() == counter() == 1
    cold_start.reset()
    assert counter() == 2
