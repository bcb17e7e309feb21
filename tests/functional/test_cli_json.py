"""The CLI's habits: versioned JSON documents that validate against their schemas, global
flags anywhere, --version, completion, help on every argument, and the stack's own jobs."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest

from stepburst import cli, cli_documents, job_catalogs, stack

from .conftest import JOBS_DIR, Cloud
from .handlers import invoke
from .test_cli import finished_run, stack_outputs
from .test_coordinator import UPLOAD_KEY, plan_payload, sample_lines, upload

pytestmark = pytest.mark.functional
__all__ = ["stack_outputs"]  # the fixture, shared with test_cli


def run_cli(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str]:
    """The CLI with --local on the in-process moto, without --jobs-dir: the stack's jobs."""
    monkeypatch.setattr(stack, "use_local_endpoint", lambda endpoint: None)
    monkeypatch.setattr(cli, "local_engine_listens", lambda endpoint: True)
    monkeypatch.delenv("STEPBURST_JOBS_DIR", raising=False)
    out = io.StringIO()
    code = cli.main(list(argv), out=out)
    return code, out.getvalue()


def valid(command: str, text: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(text)
    jsonschema.validate(document, cli_documents.schema(command))
    assert document["schema_version"] == cli_documents.SCHEMA_VERSION
    assert not {"pk", "sk", "expires_at"} & set(json.dumps(document).split('"'))
    return document


@pytest.fixture
def published(cloud: Cloud, stack_outputs: dict[str, str]) -> dict[str, str]:
    """The job catalog, where the JobSchedules custom resource publishes it at deploy."""
    job_catalogs.publish(cloud.table, JOBS_DIR)
    return stack_outputs


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no job files in it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_schema_is_a_valid_json_schema() -> None:
    names = cli_documents.schema_names()
    assert {"jobs", "start", "runs", "status", "items", "results", "cost", "logs"} <= set(names)
    for name in names:
        jsonschema.Draft202012Validator.check_schema(cli_documents.schema(name))


@pytest.mark.usefixtures("elsewhere")
def test_a_finished_run_through_every_reading_command(
    cloud: Cloud, published: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = finished_run(cloud, sample_lines(200, bad_fraction=0.05))
    run_id = plan["run_id"]

    code, text = run_cli(monkeypatch, "runs", "--local", "--json")
    assert code == 0
    assert [run["run_id"] for run in valid("runs", text)["runs"]] == [run_id]

    code, text = run_cli(monkeypatch, "--json", "status", run_id, "--local")
    status = valid("status", text)
    assert (code, status["status"], status["run_id"]) == (0, "SUCCEEDED", run_id)
    assert status["summary_uri"] == f"s3://{cloud.output_bucket}/{status['run']['summary_key']}"

    code, text = run_cli(monkeypatch, "--local", "items", run_id, "--json")
    items = valid("items", text)["items"]
    assert len(items) == plan["items"]
    assert [item["name"] for item in items] == ["part-00000"]

    code, text = run_cli(monkeypatch, "--local", "results", run_id, "--json")
    results = valid("results", text)
    assert results["uri"] == f"s3://{cloud.output_bucket}/{results['prefix']}"
    assert results["downloaded"] is None

    code, text = run_cli(monkeypatch, "--local", "cost", run_id, "--json")
    assert valid("cost", text)["lambda"] > 0

    code, text = run_cli(monkeypatch, "--local", "status", run_id, "--watch", "--json")
    lines = text.splitlines()
    assert code == 0
    assert [valid("status", line)["status"] for line in lines] == ["SUCCEEDED"]


@pytest.mark.usefixtures("elsewhere")
def test_text_output_names_items_and_gives_whole_uris(
    cloud: Cloud, published: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = finished_run(cloud, sample_lines(50))
    run_id = plan["run_id"]
    code, text = run_cli(monkeypatch, "--local", "results", run_id)
    assert code == 0
    assert not text.lstrip().startswith("{")
    assert f"outputs: s3://{cloud.output_bucket}/" in text
    assert "summary: s3://" in text
    assert "s3://…/" not in text

    code, text = run_cli(monkeypatch, "--local", "status", run_id)
    assert code == 0
    assert f"summary: s3://{cloud.output_bucket}/" in text
    assert all(line == line.rstrip() for line in text.splitlines())

    code, text = run_cli(monkeypatch, "--local", "items", run_id)
    assert "part-00000" in text


@pytest.mark.usefixtures("elsewhere")
def test_a_failed_runs_whole_cause_is_shown(
    cloud: Cloud, published: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = invoke("plan", plan_payload(upload(cloud, UPLOAD_KEY, sample_lines(20))))
    invoke("finalize", {"plan": plan, "fanout": {}, "execution_id": "arn:aws:states:x"})
    code, text = run_cli(monkeypatch, "--local", "status", plan["run_id"], "--json")
    cause = valid("status", text)["run"]["cause"]
    assert len(cause) > 40
    code, text = run_cli(monkeypatch, "--local", "status", plan["run_id"])
    assert code == 1
    assert f"cause: {cause}" in " ".join(text.split())


@pytest.mark.usefixtures("elsewhere")
def test_jobs_and_start_use_the_stacks_published_jobs(
    published: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, text = run_cli(monkeypatch, "jobs", "--local", "--json")
    names = {job["name"] for job in valid("jobs", text)["jobs"]}
    assert code == 0
    assert "ztf-alerts-daily" in names
    code, text = run_cli(
        monkeypatch, "--local", "start", "ztf-alerts-daily", "--date", "20190302", "--json"
    )
    assert (code, valid("start", text)["applied"]) == (0, False)


def test_a_job_the_stack_does_not_run_is_refused_before_anything_starts(
    published: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    elsewhere: Path,
) -> None:
    # A job file here that the stack was not deployed with.
    (elsewhere / "jobs").mkdir()
    shutil.copy(JOBS_DIR / "dam-periods.yaml", elsewhere / "jobs" / "new-job.yaml")
    code, _ = run_cli(monkeypatch, "--local", "start", "no-such-job", "--apply")
    assert code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "no job named 'no-such-job'" in err
    assert "ztf-alerts-daily" in err
    executions = boto3.client("stepfunctions").list_executions(
        stateMachineArn=published["StateMachineArn"]
    )["executions"]
    assert executions == []


@pytest.mark.usefixtures("elsewhere", "stack_outputs")
def test_a_stack_without_a_published_catalog_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_cli(monkeypatch, "--local", "jobs")
    assert code == cli.EXIT_USAGE
    assert "publishes no job catalog" in capsys.readouterr().err


# -- the command line's habits --------------------------------------------------------------------


def test_version_comes_from_the_package(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"stepburst {version('stepburst')}"


def test_stack_and_local_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--stack", "x", "runs", "--local"]) == cli.EXIT_USAGE
    assert "give --stack or --local, not both" in capsys.readouterr().err


def _arguments(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _arguments(child, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            found.append((path, action))
    return found


def test_every_argument_has_help() -> None:
    missing = [
        f"{path}: {action.dest}"
        for path, action in _arguments(cli.build_parser(), "stepburst")
        if not action.help
    ]
    assert missing == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_offer_the_commands_and_their_options(shell: str) -> None:
    out = io.StringIO()
    assert cli.main(["completion", shell], out=out) == 0
    script = out.getvalue()
    # fish names long options without their dashes (-l follow).
    for word in ("status", "logs", "follow", "watch", "json", "local", "demo"):
        assert word in script, word
    if shell == "bash" and shutil.which("bash"):
        checked = subprocess.run(["bash", "-n"], input=script, text=True, check=False)
        assert checked.returncode == 0


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_completes_a_commands_options() -> None:
    out = io.StringIO()
    cli.main(["completion", "bash"], out=out)
    probe = (
        out.getvalue()
        + 'COMP_WORDS=(stepburst status --w); COMP_CWORD=2; _stepburst; echo "${COMPREPLY[@]}"\n'
        + 'COMP_WORDS=(stepburst local u); COMP_CWORD=2; _stepburst; echo "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash"], input=probe, text=True, capture_output=True, check=True)
    assert done.stdout.splitlines() == ["--watch", "up"]


def test_the_readme_shows_every_schema_as_shipped() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for name in cli_documents.schema_names():
        shipped = json.dumps(cli_documents.schema(name), indent=2)
        assert shipped in readme, f"README's JSON output section lacks the {name} schema"


def test_logs_keep_only_the_runs_own_lines(
    cloud: Cloud, published: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = finished_run(cloud, sample_lines(20))
    run_id = plan["run_id"]
    group = "/aws/lambda/stepburst/process-items"
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    lines = [
        {"level": "INFO", "message": "unit finished", "run_id": run_id},
        {
            "level": "ERROR",
            "message": "item failed",
            "run_id": run_id,
            "item": 0,
            "exception": "Traceback (most recent call last):\nValueError: boom",
        },
        # A run whose id the first one's is a prefix of: never mixed in.
        {"level": "INFO", "message": "other run", "run_id": run_id + "-2"},
    ]
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[
            {"timestamp": now + i, "message": json.dumps(line)} for i, line in enumerate(lines)
        ],
    )
    outputs = {**published, "RunLogGroupNames": group}
    boto3.client("ssm").put_parameter(
        Name=stack.LOCAL_OUTPUTS_PARAMETER, Value=json.dumps(outputs), Overwrite=True, Type="String"
    )
    code, text = run_cli(monkeypatch, "--local", "logs", run_id, "--json")
    assert code == 0
    documents = [valid("logs", line) for line in text.splitlines()]
    assert [d["message"] for d in documents] == ["unit finished", "item failed"]
    assert documents[1]["source"] == "process-items"

    code, text = run_cli(monkeypatch, "--local", "logs", run_id, "--item", "part-00000")
    assert code == 0
    assert "ValueError: boom" in text
    assert "unit finished" not in text
