"""Batch parameters (``Ref::name``) in a job's command and in the worker's own arguments."""

from __future__ import annotations

import pytest

from stepburst.steps import render_command
from stepburst.worker import without_unset_parameters

pytestmark = pytest.mark.unit


def test_a_parameter_fills_its_argument_and_an_empty_or_unset_one_is_left_out() -> None:
    values = {"experiment_file": "s3://b/exp.yaml", "replace": "", "ITEM": "Dam001"}
    command = "triage --tb Ref::experiment_file Ref::replace Ref::profile --item {ITEM}"
    assert render_command(command, values) == [
        "triage",
        "--tb",
        "s3://b/exp.yaml",
        "--item",
        "Dam001",
    ]


def test_a_parameter_inside_an_argument_is_text() -> None:
    assert render_command("echo x=Ref::name", {"name": "v"}) == ["echo", "x=Ref::name"]


def test_the_worker_drops_what_batch_left_unset_with_its_option() -> None:
    argv = [
        "run-unit",
        "--run",
        "r1",
        "--unit",
        "3",
        "--attempt",
        "Ref::attempt",
        "--route",
        "batch",
    ]
    assert without_unset_parameters(argv) == [
        "run-unit",
        "--run",
        "r1",
        "--unit",
        "3",
        "--route",
        "batch",
    ]
    assert without_unset_parameters(["run-unit", "Ref::extra"]) == ["run-unit"]
