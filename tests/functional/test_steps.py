"""The step runner on an in-memory S3, and secrets read from Secrets Manager and SSM."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from stepburst import components
from stepburst.errors import ItemsFailedError, ParameterNotFoundError, ResourceNotFoundError
from stepburst.jobs.pipeline import Step
from stepburst.secret_values import REDACTED, SecretValues, read_secrets
from stepburst.steps import (
    OUTPUT_TAIL_BYTES,
    CommandFailedError,
    ItemContext,
    StepFailedError,
    run_steps,
)

from .conftest import Cloud
from .handlers import invoke
from .test_coordinator import plan_payload
from .test_job_kinds import run_units

pytestmark = pytest.mark.functional

HELPERS = """
import os
from pathlib import Path

SEEN = []


def summarise(scratch, item, params):
    SEEN.append(Path(scratch))
    text = (Path(scratch) / "inputs" / "a.txt").read_text()
    (Path(scratch) / "out").mkdir(exist_ok=True)
    (Path(scratch) / "out" / "summary.txt").write_text(f"{item} {params['MODE']} {text}")
    return {"chars": len(text), "token_seen": os.environ.get("API_TOKEN") is not None}


def remember(scratch, item, params):
    SEEN.append(Path(scratch))


def leak(*arguments):
    raise RuntimeError("cannot log in with " + os.environ["API_TOKEN"])
"""
TOKEN = "s3cr3t-T0ken-value-42"


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    directory = tmp_path / "jobs"
    directory.mkdir()
    (directory / "step_helpers.py").write_text(HELPERS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(directory))
    import importlib
    import sys

    sys.modules.pop("step_helpers", None)
    module = importlib.import_module("step_helpers")
    yield module
    sys.modules.pop("step_helpers", None)


def steps(*documents: dict[str, Any]) -> list[Step]:
    return [Step.model_validate(document) for document in documents]


def context(cloud: Cloud, tmp_path: Path, secrets: SecretValues | None = None) -> ItemContext:
    return ItemContext(
        item="Dam001/Period02",
        variables={
            "ITEM": "Dam001/Period02",
            "MODE": "full",
            "RUN_ID": "r1",
            "OUTPUT_BUCKET": cloud.output_bucket,
            "OUTPUT_PREFIX": "dams/r1/",
        },
        input_bucket=cloud.input_bucket,
        output_bucket=cloud.output_bucket,
        output_prefix="dams/r1/",
        jobs_dir=tmp_path,
        secrets=secrets or SecretValues({}),
    )


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def unzipped(cloud: Cloud, key: str) -> dict[str, bytes]:
    body = cloud.s3.get_object(Bucket=cloud.output_bucket, Key=key)["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_fetch_unzip_command_function_and_zipped_store(
    cloud: Cloud, tmp_path: Path, helpers: Any
) -> None:
    cloud.s3.put_object(
        Bucket=cloud.input_bucket,
        Key="inputs/Dam001/Period02.zip",
        Body=zipped({"a.txt": b"rain", "deep/b.txt": b"snow"}),
    )
    pipeline = steps(
        {"fetch": {"key": "inputs/{ITEM}.zip", "into": "inputs", "unzip": True}},
        {
            "command": "python -c \"import os; os.makedirs('out', exist_ok=True); "
            "open('out/cmd.txt', 'w').write('{ITEM} {MODE}')\""
        },
        {"function": "step_helpers:summarise"},
        {"store": {"glob": "out/*", "zip": True}},
    )
    summary = run_steps(pipeline, context(cloud, tmp_path))

    assert summary["fetched_objects"] == 1
    assert summary["exit_code"] == 0
    assert summary["result"] == {"chars": 4, "token_seen": False}
    assert summary["outputs"] == [f"s3://{cloud.output_bucket}/dams/r1/Dam001/Period02.zip"]
    assert unzipped(cloud, "dams/r1/Dam001/Period02.zip") == {
        "out/cmd.txt": b"Dam001/Period02 full",
        "out/summary.txt": b"Dam001/Period02 full rain",
    }
    (scratch,) = helpers.SEEN
    assert not scratch.exists()


def test_fetch_a_prefix_and_store_each_file_under_a_prefix(cloud: Cloud, tmp_path: Path) -> None:
    for key in ("shared/faults/f1.dat", "shared/faults/sub/f2.dat", "shared/other.dat"):
        cloud.s3.put_object(Bucket=cloud.input_bucket, Key=key, Body=key.encode())
    cloud.s3.create_bucket(Bucket="elsewhere")
    summary = run_steps(
        steps(
            {"fetch": {"prefix": "shared/faults/"}},
            {"store": {"glob": "**/*.dat", "key": "s3://elsewhere/copies/{RUN_ID}/"}},
            {"store": {"glob": "sub/*"}},
        ),
        context(cloud, tmp_path),
    )
    assert summary["fetched_objects"] == 2
    listed = cloud.s3.list_objects_v2(Bucket="elsewhere")["Contents"]
    assert sorted(entry["Key"] for entry in listed) == [
        "copies/r1/f1.dat",
        "copies/r1/sub/f2.dat",
    ]
    body = cloud.s3.get_object(
        Bucket=cloud.output_bucket, Key="dams/r1/Dam001/Period02/sub/f2.dat"
    )["Body"].read()
    assert body == b"shared/faults/sub/f2.dat"
    assert summary["stored_files"] == 3


def test_a_failed_step_stops_the_item_with_its_step_exit_code_and_tail(
    cloud: Cloud, tmp_path: Path, helpers: Any
) -> None:
    pipeline = steps(
        {"function": "step_helpers:remember"},
        {"command": "python -c \"print('working on {ITEM}'); raise SystemExit(4)\""},
        {"store": {"glob": "*", "zip": True}},
    )
    with pytest.raises(CommandFailedError) as raised:
        run_steps(pipeline, context(cloud, tmp_path))
    failure = raised.value
    assert (failure.index, failure.kind, failure.exit_code) == (1, "command", 4)
    assert failure.output_tail.strip() == "working on Dam001/Period02"
    assert "Contents" not in cloud.s3.list_objects_v2(Bucket=cloud.output_bucket)
    (scratch,) = helpers.SEEN
    assert not scratch.exists()


@pytest.mark.parametrize(
    ("document", "kind", "error", "words"),
    [
        ({"fetch": {"key": "missing/{ITEM}.zip"}}, "fetch", "ObjectNotFoundError", "missing/"),
        ({"fetch": {"prefix": "nothing/"}}, "fetch", "StepburstError", "no objects under"),
        ({"store": {"glob": "*.out"}}, "store", "StepburstError", "matches no file"),
        ({"command": "echo {NOT_GIVEN}"}, "command", "StepburstError", "run.steps[0].command"),
    ],
)
def test_step_failures_name_the_step(
    *, cloud: Cloud, tmp_path: Path, document: dict[str, Any], kind: str, error: str, words: str
) -> None:
    with pytest.raises(StepFailedError) as raised:
        run_steps(steps(document), context(cloud, tmp_path))
    assert (raised.value.index, raised.value.kind, raised.value.error) == (0, kind, error)
    assert words in str(raised.value)


def test_unzip_refuses_an_object_that_is_not_a_zip(cloud: Cloud, tmp_path: Path) -> None:
    cloud.s3.put_object(Bucket=cloud.input_bucket, Key="in/x.zip", Body=b"not a zip")
    with pytest.raises(StepFailedError, match="not a zip archive"):
        run_steps(steps({"fetch": {"key": "in/x.zip", "unzip": True}}), context(cloud, tmp_path))


def test_output_tails_never_hold_a_secret(cloud: Cloud, tmp_path: Path) -> None:
    secrets = SecretValues({"API_TOKEN": TOKEN})
    # The secret straddles the start of the tail window: a naive tail would keep its end.
    filler = OUTPUT_TAIL_BYTES - len(TOKEN) // 2
    command = (
        f"python -c \"import os; print(os.environ['API_TOKEN'] + 'x' * {filler}, end=''); "
        'raise SystemExit(2)"'
    )
    with pytest.raises(CommandFailedError) as raised:
        run_steps(steps({"command": command}), context(cloud, tmp_path, secrets))
    tail = raised.value.output_tail
    assert TOKEN[len(TOKEN) // 2 :] not in tail
    assert tail.endswith("x" * 100)

    echo = "python -c \"import os; print('token', os.environ['API_TOKEN']); raise SystemExit(3)\""
    with pytest.raises(CommandFailedError) as raised:
        run_steps(steps({"command": echo}), context(cloud, tmp_path, secrets))
    assert raised.value.output_tail.strip() == f"token {REDACTED}"
    assert TOKEN not in str(raised.value)


def test_secrets_come_from_the_environment_secrets_manager_or_ssm(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = boto3.client("secretsmanager").create_secret(Name="db/password", SecretString="pw1")[
        "ARN"
    ]
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/jobs/token", Value="tok2", Type="SecureString")
    partial_arn = arn.rsplit("-", 1)[0]  # without Secrets Manager's random suffix
    monkeypatch.setenv("GIVEN", "from-ecs")
    sources = {"DB": arn, "DB2": partial_arn, "TOKEN": "/jobs/token", "GIVEN": "/never/read"}
    values = read_secrets(sources)
    assert values.as_environment() == {
        "DB": "pw1",
        "DB2": "pw1",
        "TOKEN": "tok2",
        "GIVEN": "from-ecs",
    }
    assert "pw1" not in repr(values)

    with pytest.raises(ParameterNotFoundError, match="/jobs/missing"):
        read_secrets({"X": "/jobs/missing"})
    with pytest.raises(ResourceNotFoundError, match="secret:nothing"):
        read_secrets({"X": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nothing"})


STEPS_JOB = """
name: leaky
split:
  items: {}
run:
  steps:
    - command: python -c "import os; print('token is', os.environ['API_TOKEN']); exit(5)"
    - store: {glob: "*"}
secrets:
  API_TOKEN: /jobs/api-token
output:
  prefix: leaky/
"""
FUNCTION_JOB = """
name: leaky-function
split:
  items: {}
run:
  function: step_helpers:leak
secrets:
  API_TOKEN: /jobs/api-token
output:
  prefix: leaky/
"""


@pytest.mark.parametrize(
    ("spec", "error", "step"), [(STEPS_JOB, "CommandFailedError", 0), (FUNCTION_JOB, "", None)]
)
def test_the_ledger_keeps_the_failed_step_and_never_a_secret(
    *,
    cloud: Cloud,
    helpers: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    spec: str,
    error: str,
    step: int | None,
) -> None:
    boto3.client("ssm").put_parameter(Name="/jobs/api-token", Value=TOKEN, Type="SecureString")
    jobs = tmp_path / "jobs"
    name = "leaky" if step is not None else "leaky-function"
    (jobs / f"{name}.yaml").write_text(spec, encoding="utf-8")
    monkeypatch.setenv("STEPBURST_JOBS_DIR", str(jobs))
    components.reset()
    plan = invoke("plan", plan_payload({"job": name, "input": {"items": ["a"]}}))
    (outcome,) = run_units(plan)
    assert isinstance(outcome, ItemsFailedError)
    (record,) = components.ledger().iter_items(plan["run_id"])
    assert record["status"] == "FAILED"
    assert TOKEN not in str(record)
    assert TOKEN not in capsys.readouterr().out
    if step is None:
        assert record["error"] == "RuntimeError"
        assert record["cause"] == f"cannot log in with {REDACTED}"
        return
    assert record["error"] == error
    assert (record["failed_step"], record["failed_step_kind"], record["exit_code"]) == (
        0,
        "command",
        5,
    )
    assert record["output_tail"].strip() == f"token is {REDACTED}"
