"""jobs/triage_experiment.py on moto: replace semantics, a missing password, a bad experiment."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

pytestmark = pytest.mark.functional

BUCKET = "dirtyduck-triage"
EXPERIMENT_KEY = "experiments/small.yaml"
EXPERIMENT = "data: {rows: 60, features: 2, seed: 3}\nmodel: {epochs: 20}\n"


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "POSTGRES_HOST": "db",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "triage",
        "POSTGRES_DB": "dirtyduck",
        "POSTGRES_PASSWORD": "pw-never-printed-4c1d",
    }.items():
        monkeypatch.setenv(name, value)


def _run(*flags: str) -> int:
    # jobs/ is on the import path only under the s3 fixture, as in the worker.
    triage_experiment = importlib.import_module("triage_experiment")
    argv = [f"s3://{BUCKET}/{EXPERIMENT_KEY}", "--project-path", f"s3://{BUCKET}/out", *flags]
    return int(triage_experiment.main(argv))


def _metrics(s3: Any) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="out/").get("Contents", [])
    return [entry["Key"] for entry in listed if entry["Key"].endswith("metrics.json")]


def test_no_replace_keeps_results_and_replace_rewrites_them(
    s3: Any, database: None, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket=BUCKET, Key=EXPERIMENT_KEY, Body=EXPERIMENT.encode())
    assert _run() == 0
    (key,) = _metrics(s3)
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"marker": 1}).encode())

    assert _run("--no-replace") == 0
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()) == {"marker": 1}
    assert _run("--replace") == 0
    rewritten = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert set(rewritten["metrics"]) == {"accuracy", "log_loss", "precision@10_pct"}
    printed = capsys.readouterr()
    assert "kept the results" in printed.out
    assert "pw-never-printed-4c1d" not in printed.out + printed.err


def test_a_missing_password_or_a_bad_experiment_fails_without_a_traceback(
    s3: Any, database: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket=BUCKET, Key=EXPERIMENT_KEY, Body=b"data: {rows: 5}\n")
    assert _run() == 2
    assert "data.rows must be 10 to 1000000" in capsys.readouterr().err

    monkeypatch.delenv("POSTGRES_PASSWORD")
    assert _run() == 3
    failed = capsys.readouterr()
    assert "POSTGRES_PASSWORD is not set" in failed.err
    assert "Traceback" not in failed.out + failed.err
