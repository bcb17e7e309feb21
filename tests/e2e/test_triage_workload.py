"""The triage experiments workload end to end on the local engine, through the CLI.

As the tutorial's ``deploy.sh --sync-to-s3`` and ``deploy.sh -r`` did: the experiment file goes
to the project's bucket with ``stepburst sync``, the database password sits in Secrets Manager,
and one start with the job definition's parameters runs the experiment on Batch on EC2. The
results are checked against a computation of this test's own (numpy, not the job's code), and
the password is looked for in everything a user or the ledger can see.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.cli_runner import run_cli

from stepburst_local import LocalEngine

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "dirtyduck-triage"  # the job's access.read and access.write name it
SECRET_NAME = "triage/postgres-password"
PASSWORD = "pg-5e1f0c-never-shown-9a7b"
EXPERIMENT = {
    "name": "simple_test_skeleton",
    "data": {"rows": 300, "features": 3, "seed": 11, "test_fraction": 0.2},
    "model": {"learning_rate": 0.4, "epochs": 150, "l2": 0.001},
}


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(ROOT, time_scale=0.01, quiet=True) as running:
        running.client("s3").create_bucket(Bucket=BUCKET)
        running.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=PASSWORD)
        yield running


def _cli(engine: LocalEngine, *argv: str) -> str:
    """Everything the CLI showed, both streams: a secret must be in neither."""
    completed = run_cli(engine, *argv, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout + completed.stderr


def _expected(experiment: dict[str, Any]) -> tuple[dict[str, float], list[tuple[int, int, float]]]:
    """The experiment computed here: the seeded data, then logistic regression written apart
    from the job's (whole-matrix gradients with math.fsum, column by column)."""
    data, model = experiment["data"], experiment["model"]
    rng = random.Random(data["seed"])
    hidden = [rng.uniform(-2, 2) for _ in range(data["features"])]
    rows, labels = [], []
    for _ in range(data["rows"]):
        row = [rng.gauss(0, 1) for _ in range(data["features"])]
        noise = rng.gauss(0, 1)
        rows.append([*row, 1.0])  # the intercept's column
        labels.append(
            1 if math.fsum(h * v for h, v in zip(hidden, row, strict=True)) + noise > 0 else 0
        )
    split = int(len(rows) * (1 - data["test_fraction"]))
    train, test = rows[:split], rows[split:]

    def predict(weights: list[float], matrix: list[list[float]]) -> list[float]:
        return [
            1 / (1 + math.exp(-math.fsum(w * v for w, v in zip(weights, r, strict=True))))
            for r in matrix
        ]

    weights = [0.0] * (data["features"] + 1)
    for _ in range(model["epochs"]):
        errors = [p - y for p, y in zip(predict(weights, train), labels[:split], strict=True)]
        for column in range(len(weights)):
            gradient = math.fsum(e * r[column] for e, r in zip(errors, train, strict=True)) / split
            penalty = model["l2"] * weights[column] if column < data["features"] else 0.0
            weights[column] -= model["learning_rate"] * (gradient + penalty)
    scores = predict(weights, test)
    truth = labels[split:]
    top = max(1, len(test) // 10)
    ranked = sorted(range(len(test)), key=lambda index: (-scores[index], index))[:top]
    metrics = {
        "accuracy": sum((p >= 0.5) == (y == 1) for p, y in zip(scores, truth, strict=True))
        / len(test),
        "log_loss": -math.fsum(
            y * math.log(p) + (1 - y) * math.log(1 - p) for p, y in zip(scores, truth, strict=True)
        )
        / len(test),
        "precision@10_pct": sum(truth[index] for index in ranked) / top,
    }
    predictions = [
        (split + offset, y, p) for offset, (y, p) in enumerate(zip(truth, scores, strict=True))
    ]
    return metrics, predictions


def test_an_experiment_runs_on_batch_with_its_secret_shown_nowhere(
    engine: LocalEngine, tmp_path: Path
) -> None:
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    (experiments / "simple_test_skeleton.yaml").write_text(yaml.safe_dump(EXPERIMENT))
    shown = {"sync": _cli(engine, "sync", str(experiments), f"s3://{BUCKET}/experiments/")}
    experiment_file = f"s3://{BUCKET}/experiments/simple_test_skeleton.yaml"
    output_path = f"s3://{BUCKET}/triage/run-1"
    params = (
        "--param",
        f"experiment_file={experiment_file}",
        "--param",
        f"output_path={output_path}",
        "--param",
        "replace=",
        "--param",
        "save_predictions=--save-predictions",
    )
    shown["plan"] = _cli(engine, "start", "triage-experiment", *params)
    shown["start"] = _cli(engine, "start", "triage-experiment", *params, "--apply", "--json")
    started = json.loads(shown["start"])
    description = engine.wait_for_execution(str(started["execution_arn"]), timeout=600)
    run_id = str(started["run_id"])
    assert description["status"] == "SUCCEEDED", _cli(engine, "items", run_id, "--json")
    run_id = str(started["run_id"])
    shown["status"] = _cli(engine, "status", run_id, "--watch", "--interval", "0.2", "--json")
    for argv in (("items", run_id, "--json"), ("items", run_id), ("results", run_id, "--json")):
        shown[" ".join(argv)] = _cli(engine, *argv)

    (item,) = json.loads(shown[f"items {run_id} --json"])["items"]
    assert item["status"] == "SUCCEEDED", item
    assert item["route"] == "batch"
    # The command line as the job ran it: the empty params left out, not passed as "".
    (command,) = [line for line in item["output_tail"].splitlines() if line.startswith("command: ")]
    assert command == (
        f"command: triage_experiment --tb {experiment_file} --project-path {output_path} "
        "--save-predictions"
    )
    assert "''" not in command
    assert "--no-replace" not in command
    assert (
        "database: postgresql://triage@db.dirtyduck.internal:5432/dirtyduck"
        in (item["output_tail"])
    )

    # The results where the user asked, equal to this test's own computation.
    canonical = json.dumps(EXPERIMENT, sort_keys=True, separators=(",", ":"))
    folder = f"triage/run-1/{hashlib.sha256(canonical.encode()).hexdigest()[:16]}/"
    s3 = engine.client("s3")
    stored = {
        entry["Key"][len(folder) :]
        for entry in s3.list_objects_v2(Bucket=BUCKET, Prefix=folder)["Contents"]
    }
    assert stored == {"metrics.json", "predictions.csv"}
    metrics = json.loads(s3.get_object(Bucket=BUCKET, Key=folder + "metrics.json")["Body"].read())
    expected_metrics, expected_predictions = _expected(EXPERIMENT)
    assert metrics["experiment_file"] == experiment_file
    assert metrics["metrics"] == pytest.approx(expected_metrics, abs=2e-6)
    assert (metrics["train_rows"], metrics["test_rows"]) == (240, 60)
    body = s3.get_object(Bucket=BUCKET, Key=folder + "predictions.csv")["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [(int(r["row"]), int(r["label"])) for r in rows] == [
        (row, label) for row, label, _ in expected_predictions
    ]
    assert [float(r["score"]) for r in rows] == pytest.approx(
        [score for _, _, score in expected_predictions], abs=2e-6
    )

    # The password: in no CLI output, no ledger record, no execution's input.
    ledger = json.dumps(
        engine.client("dynamodb").scan(TableName=engine.outputs["LedgerTableName"]), default=str
    )
    sfn = engine.client("stepfunctions")
    inputs = [
        sfn.describe_execution(executionArn=execution["executionArn"]).get("input", "")
        for execution in engine.iter_executions(engine.state_machine_arn)
    ]
    places = {**shown, "ledger": ledger}
    places.update({f"execution input {index}": text for index, text in enumerate(inputs)})
    assert any("triage-experiment" in text for text in inputs)
    assert sorted(place for place, text in places.items() if PASSWORD in text) == []
