"""Run one triage experiment: ``python -m triage_experiment --tb s3://…/test.yaml --project-path
s3://…/triage [--replace|--no-replace] [--save-predictions] [--profile] [--validate]``.

A small stand-in for ``triage experiment`` with the same command line: it reads the experiment
file from S3, checks that the database is configured (the password comes from the job's
secrets, never printed), trains a logistic regression on the experiment's seeded data and
writes its metrics (and, when asked, its predictions) under the project path, in a folder named
by the experiment's hash as triage names its matrices and models.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import hashlib
import io
import json
import math
import os
import pstats
import random
import shlex
import sys
import traceback
from dataclasses import dataclass
from typing import Any

import yaml

from stepburst.errors import StepburstError
from stepburst.storage import S3Object, get_bytes, get_json, object_exists, put_bytes, put_json
from stepburst.syncing import parse_s3_uri

DATABASE_VARIABLES = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_DB")
DEFAULTS: dict[str, Any] = {
    "data": {"rows": 400, "features": 4, "seed": 0, "test_fraction": 0.25},
    "model": {"learning_rate": 0.5, "epochs": 200, "l2": 0.0},
}
EXIT_BAD_EXPERIMENT = 2
EXIT_NO_DATABASE = 3


class ExperimentError(Exception):
    """The experiment file or the environment cannot run an experiment."""


@dataclass(frozen=True)
class Settings:
    rows: int
    features: int
    seed: int
    test_fraction: float
    learning_rate: float
    epochs: int
    l2: float


def settings(config: dict[str, Any]) -> Settings:
    """The experiment's data and model settings, defaults filled in, checked."""
    if not isinstance(config, dict):
        raise ExperimentError("the experiment file is not a mapping")
    unknown = sorted(set(config) - {"name", "data", "model"})
    if unknown:
        raise ExperimentError(f"unknown section(s) in the experiment: {', '.join(unknown)}")
    merged: dict[str, Any] = {}
    for section, defaults in DEFAULTS.items():
        given = config.get(section) or {}
        if not isinstance(given, dict):
            raise ExperimentError(f"{section} is not a mapping")
        extra = sorted(set(given) - set(defaults))
        if extra:
            raise ExperimentError(f"unknown setting(s) in {section}: {', '.join(extra)}")
        merged.update({**defaults, **given})
    try:
        chosen = Settings(
            rows=int(merged["rows"]),
            features=int(merged["features"]),
            seed=int(merged["seed"]),
            test_fraction=float(merged["test_fraction"]),
            learning_rate=float(merged["learning_rate"]),
            epochs=int(merged["epochs"]),
            l2=float(merged["l2"]),
        )
    except (TypeError, ValueError) as exc:
        raise ExperimentError(f"a setting is not a number: {exc}") from exc
    if not (10 <= chosen.rows <= 1_000_000 and 1 <= chosen.features <= 100):
        raise ExperimentError("data.rows must be 10 to 1000000 and data.features 1 to 100")
    if not 0 < chosen.test_fraction < 1:
        raise ExperimentError("data.test_fraction must be between 0 and 1")
    if chosen.epochs < 1 or chosen.learning_rate <= 0 or chosen.l2 < 0:
        raise ExperimentError("model.epochs, model.learning_rate must be positive, l2 >= 0")
    return chosen


def experiment_hash(config: dict[str, Any]) -> str:
    """Like triage's experiment hash: the same experiment always lands in the same folder."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def generate(chosen: Settings) -> tuple[list[list[float]], list[int]]:
    """Seeded rows: Gaussian features, a label from a hidden linear rule plus noise."""
    rng = random.Random(chosen.seed)
    weights = [rng.uniform(-2, 2) for _ in range(chosen.features)]
    rows, labels = [], []
    for _ in range(chosen.rows):
        row = [rng.gauss(0, 1) for _ in range(chosen.features)]
        score = sum(w * x for w, x in zip(weights, row, strict=True)) + rng.gauss(0, 1)
        rows.append(row)
        labels.append(1 if score > 0 else 0)
    return rows, labels


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


def train(rows: list[list[float]], labels: list[int], chosen: Settings) -> list[float]:
    """Batch gradient descent on the mean log loss; the last weight is the intercept."""
    weights = [0.0] * (chosen.features + 1)
    count = len(rows)
    for _ in range(chosen.epochs):
        gradient = [0.0] * len(weights)
        for row, label in zip(rows, labels, strict=True):
            error = _sigmoid(_score(weights, row)) - label
            for index, value in enumerate(row):
                gradient[index] += error * value
            gradient[-1] += error
        for index in range(len(weights)):
            penalty = chosen.l2 * weights[index] if index < chosen.features else 0.0
            weights[index] -= chosen.learning_rate * (gradient[index] / count + penalty)
    return weights


def _score(weights: list[float], row: list[float]) -> float:
    return sum(w * x for w, x in zip(weights, row, strict=False)) + weights[-1]


def evaluate(
    weights: list[float], rows: list[list[float]], labels: list[int]
) -> tuple[dict[str, float], list[float]]:
    scores = [_sigmoid(_score(weights, row)) for row in rows]
    eps = 1e-12
    log_loss = -sum(
        y * math.log(max(p, eps)) + (1 - y) * math.log(max(1 - p, eps))
        for p, y in zip(scores, labels, strict=True)
    ) / len(rows)
    accuracy = sum((p >= 0.5) == (y == 1) for p, y in zip(scores, labels, strict=True)) / len(rows)
    # Precision at the top 10% of scores: triage's usual "precision@10_pct".
    top = max(1, len(rows) // 10)
    ranked = sorted(range(len(rows)), key=lambda index: (-scores[index], index))[:top]
    precision = sum(labels[index] for index in ranked) / top
    metrics = {
        "accuracy": round(accuracy, 6),
        "log_loss": round(log_loss, 6),
        "precision@10_pct": round(precision, 6),
    }
    return metrics, scores


def run_experiment(config: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The experiment's metrics and its test predictions as CSV (row, label, score)."""
    chosen = settings(config)
    rows, labels = generate(chosen)
    split = int(len(rows) * (1 - chosen.test_fraction))
    weights = train(rows[:split], labels[:split], chosen)
    metrics, scores = evaluate(weights, rows[split:], labels[split:])
    predictions = io.StringIO()
    writer = csv.writer(predictions, lineterminator="\n")
    writer.writerow(["row", "label", "score"])
    for offset, (label, score) in enumerate(zip(labels[split:], scores, strict=True)):
        writer.writerow([split + offset, label, f"{score:.6f}"])
    result = {
        "experiment_hash": experiment_hash(config),
        "train_rows": split,
        "test_rows": len(rows) - split,
        "metrics": metrics,
        "weights": [round(w, 6) for w in weights],
    }
    return result, predictions.getvalue()


def database_target() -> str:
    """Where the results' database is, for the log; the password is only checked as set."""
    if not os.environ.get("POSTGRES_PASSWORD"):
        raise ExperimentError("POSTGRES_PASSWORD is not set: give the job its secret")
    missing = [name for name in DATABASE_VARIABLES if not os.environ.get(name)]
    if missing:
        raise ExperimentError(f"database settings missing: {', '.join(missing)}")
    return (
        f"postgresql://{os.environ['POSTGRES_USER']}@{os.environ['POSTGRES_HOST']}:"
        f"{os.environ['POSTGRES_PORT']}/{os.environ['POSTGRES_DB']}"
    )


def _object_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key or key.endswith("/"):
        raise ExperimentError(f"{uri!r} is not s3://bucket/key of an experiment file")
    return bucket, key


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="triage_experiment", description=__doc__)
    parser.add_argument("--tb", action="store_true", help="print tracebacks on error")
    parser.add_argument("experiment_file", help="s3://bucket/key of the experiment YAML")
    parser.add_argument("--project-path", required=True, help="s3:// folder for the results")
    parser.add_argument(
        "--replace",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run again over existing results (default), or keep them",
    )
    parser.add_argument("--save-predictions", action=argparse.BooleanOptionalAction)
    parser.add_argument("--profile", action="store_true", help="store a profile of the run")
    parser.add_argument(
        "--validate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="check the experiment before running it (default)",
    )
    return parser


def _run(args: argparse.Namespace) -> dict[str, Any]:
    print(f"database: {database_target()}", flush=True)
    bucket, key = _object_uri(args.experiment_file)
    config = yaml.safe_load(get_bytes(bucket, key))
    if args.validate:
        settings(config)
        print("experiment file is valid", flush=True)
    out_bucket, out_prefix = parse_s3_uri(args.project_path)
    folder = f"{out_prefix.rstrip('/')}/{experiment_hash(config)}/".lstrip("/")
    if not args.replace:
        existing = S3Object(out_bucket, folder + "metrics.json")
        if object_exists(existing):
            print(f"kept the results at s3://{out_bucket}/{folder} (--no-replace)", flush=True)
            kept: dict[str, Any] = get_json(existing.bucket, existing.key)
            return kept
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    result, predictions = run_experiment(config)
    if profiler is not None:
        profiler.disable()
        report = io.StringIO()
        pstats.Stats(profiler, stream=report).sort_stats("cumulative").print_stats(20)
        put_bytes(out_bucket, folder + "profile.txt", report.getvalue().encode())
    result["experiment_file"] = args.experiment_file
    put_json(out_bucket, folder + "metrics.json", result)
    if args.save_predictions:
        put_bytes(out_bucket, folder + "predictions.csv", predictions.encode())
    print(f"results at s3://{out_bucket}/{folder}: {json.dumps(result['metrics'])}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    # The command line as run, for the item's output: secrets live in the environment only.
    print("command: triage_experiment " + shlex.join(given), flush=True)
    args = _parser().parse_args(given)
    try:
        _run(args)
    except (ExperimentError, StepburstError, yaml.YAMLError) as exc:
        if args.tb:
            traceback.print_exc()
        print(f"triage_experiment: {exc}", file=sys.stderr)
        return EXIT_NO_DATABASE if "POSTGRES" in str(exc) else EXIT_BAD_EXPERIMENT
    return 0


if __name__ == "__main__":
    sys.exit(main())
