"""template.yaml passes cfn-lint and `sam validate --lint`."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file

pytestmark = pytest.mark.template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def test_cfn_lint_reports_nothing() -> None:
    # Informational checks too: every stateful resource says what happens to it on delete.
    matches = lint_file(TEMPLATE, config=ManualArgs(include_checks=["I"]))

    assert [str(match) for match in matches] == []


def test_sam_validate_lint_passes(sam: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    completed = sam("validate", "--lint", "--region", "us-east-1", "--template-file", str(TEMPLATE))

    assert completed.returncode == 0, completed.stdout + completed.stderr
