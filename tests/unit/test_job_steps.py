"""run.steps and secrets in job files: each invalid form fails with its field path named."""

from __future__ import annotations

from typing import Any

import pytest

from stepburst.errors import JobSpecError
from stepburst.jobs import parse_job

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = {
    "name": "dams",
    "split": {"items": {}},
    "output": {"prefix": "dams/"},
    "params": {"MODE": "quick"},
    "secrets": {"API_TOKEN": "/dams/api-token"},
}


def job(run: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**BASE, "run": run, **fields}


def test_a_full_pipeline_is_valid() -> None:
    parsed = parse_job(
        job(
            {
                "steps": [
                    {"fetch": {"key": "inputs/{ITEM}.zip", "into": "in", "unzip": True}},
                    {"fetch": {"prefix": "s3://shared-data/faults/"}},
                    {"command": "model --item {ITEM} --mode {MODE} --token {API_TOKEN}"},
                    {"function": "dam_periods:summarise"},
                    {"store": {"glob": "out/**/*", "zip": True, "key": "{RUN_ID}/{ITEM}.zip"}},
                ]
            }
        ),
        "dams.yaml",
    )
    assert parsed.run.steps is not None
    assert [step.kind for step in parsed.run.steps] == [
        "fetch",
        "fetch",
        "command",
        "function",
        "store",
    ]
    assert parsed.secrets == {"API_TOKEN": "/dams/api-token"}


@pytest.mark.parametrize(
    ("run", "field", "words"),
    [
        ({"steps": []}, "run.steps", "non-empty"),
        ({"steps": [{}]}, "run.steps[0]", "non-empty"),
        ({"steps": [{"command": "a", "function": "m:f"}]}, "run.steps[0]", "too many"),
        ({"steps": [{"shell": "a"}]}, "run.steps[0]", "'shell' was unexpected"),
        ({"command": "a", "steps": [{"command": "a"}]}, "run", "too many"),
        (
            {"steps": [{"command": "a"}, {"command": "b"}, {"store": {"glob": "{OUT}/*"}}]},
            "run.steps[2].store.glob",
            "{OUT} is not a param",
        ),
        (
            {"steps": [{"store": {"glob": "*", "key": "{ITEM}/{MODEL}.zip", "zip": True}}]},
            "run.steps[0].store.key",
            "{MODEL} is not a param",
        ),
        ({"steps": [{"command": "run {ITEMS}"}]}, "run.steps[0].command", "{ITEMS}"),
        (
            {"steps": [{"fetch": {"key": "in/{API_TOKEN}"}}]},
            "run.steps[0].fetch.key",
            "a secret fills only a command's arguments",
        ),
        ({"steps": [{"fetch": {"key": "a", "prefix": "b"}}]}, "run.steps[0].fetch", "exactly"),
        ({"steps": [{"fetch": {"into": "in"}}]}, "run.steps[0].fetch", "exactly one of key"),
        ({"steps": [{"fetch": {"key": "k", "into": "../up"}}]}, "run.steps[0].fetch.into", ""),
        ({"steps": [{"store": {"glob": "/etc/*"}}]}, "run.steps[0].store.glob", "inside"),
        ({"steps": [{"store": {"glob": "*", "key": "a/", "zip": True}}]}, "run.steps[0].store", ""),
        ({"steps": [{"store": {"glob": "*", "key": "a.zip"}}]}, "run.steps[0].store", "end in /"),
        ({"steps": [{"function": "no-colon"}]}, "run.steps[0].function", ""),
    ],
)
def test_invalid_steps_name_the_field(run: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(JobSpecError) as raised:
        parse_job(job(run), "dams.yaml")
    assert (raised.value.source, raised.value.field) == ("dams.yaml", field)
    assert words in raised.value.problem


def test_an_open_job_leaves_unknown_names_to_run_time() -> None:
    parse_job(job({"steps": [{"command": "run {ANY}"}]}, params_open=True), "dams.yaml")


@pytest.mark.parametrize(
    ("secrets", "field", "words"),
    [
        ({"AWS_SECRET_ACCESS_KEY": "/x"}, "secrets.AWS_SECRET_ACCESS_KEY", "of the runtime"),
        ({"MODE": "/x"}, "secrets.MODE", "already a param"),
        ({"ITEM": "/x"}, "secrets.ITEM", "built-in"),
        ({"T": "has spaces"}, "secrets.T", "does not match"),
    ],
)
def test_invalid_secrets_name_the_field(secrets: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(JobSpecError) as raised:
        parse_job(job({"command": "run"}, secrets=secrets), "dams.yaml")
    assert raised.value.field == field
    assert words in raised.value.problem


def test_secret_sources_are_arns_or_parameter_names() -> None:
    sources = {
        "A": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
        "B": "arn:aws:ssm:eu-west-1:123456789012:parameter/dams/token",
        "C": "/dams/token",
        "D": "plain-name",
    }
    assert parse_job(job({"command": "run"}, secrets=sources), "dams.yaml").secrets == sources
