"""Checks for the whole suite: every test's tier marker is its directory's tier (tiers.py)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from tests.tiers import TIERS, tier_mismatch

# The tier check itself is tested by running pytest on a small copy of the suite.
pytest_plugins = ("pytester",)

TESTS = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    registered = {line.split(":", 1)[0].strip() for line in config.getini("markers")}
    if missing := sorted(TIERS - registered):
        raise pytest.UsageError(f"tier markers not registered in pyproject.toml: {missing}")


def tier_problem(item: pytest.Item) -> str | None:
    markers = (marker.name for marker in item.iter_markers())
    return tier_mismatch(item.path.relative_to(TESTS), markers)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A file whose tests' tier marker is not its directory's tier is a collection error: the
    run stops before any test runs (in every xdist worker too), whatever ``-m`` selects."""
    report = yield
    if report.passed:
        problems = dict.fromkeys(
            problem
            for item in report.result
            if isinstance(item, pytest.Item) and item.path.is_relative_to(TESTS)
            if (problem := tier_problem(item)) is not None
        )
        if problems:
            report.outcome = "failed"
            report.longrepr = "\n".join(problems)
            report.result = []
    return report
