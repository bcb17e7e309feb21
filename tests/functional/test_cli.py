"""The CLI's commands against moto, with runs made by the real handlers.

The engine-backed end-to-end tests in tests/e2e drive the same commands through a real
state machine; these pin down parsing, validation, output and exit codes.
"""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from stepburst import cli, operations, stack
from stepburst.operations import Operations, Started
from stepburst.planning import run_id_for

from .conftest import JOBS_DIR, Cloud
from .handlers import invoke
from .test_coordinator import UPLOAD_KEY, plan_payload, run_all_units, sample_lines, upload

pytestmark = pytest.mark.functional


@pytest.fixture
def stack_outputs(cloud: Cloud) -> dict[str, str]:
    role = "arn:aws:iam::123456789012:role/sfn"
    machine = boto3.client("stepfunctions").create_state_machine(
        name="coordinator",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=role,
    )
    outputs = {
        "InputBucketName": cloud.input_bucket,
        "OutputBucketName": cloud.output_bucket,
        "WorkBucketName": cloud.work_bucket,
        "LedgerTableName": cloud.table,
        "StateMachineArn": machine["stateMachineArn"],
        "LedgerRetentionDays": "30",
    }
    # Published where `stepburst local up` publishes a local stack's outputs.
    boto3.client("ssm").put_parameter(
        Name=stack.LOCAL_OUTPUTS_PARAMETER, Value=json.dumps(outputs), Type="String"
    )
    return outputs


def run_cli(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str]:
    """Run the CLI with --local, served by the in-process moto of the fixture."""
    monkeypatch.setattr(stack, "use_local_endpoint", lambda endpoint: None)
    monkeypatch.setattr(cli, "local_engine_listens", lambda endpoint: True)
    out = io.StringIO()
    code = cli.main(["--local", "--jobs-dir", str(JOBS_DIR), *argv], out=out)
    return code, out.getvalue()


def test_jobs_lists_every_job(monkeypatch: pytest.MonkeyPatch) -> None:
    code, text = run_cli(monkeypatch, "jobs")
    assert code == 0
    assert "yelp-business-scores" in text
    assert "cron(0 6 * * ? *) America/Los_Angeles" in text


def test_invalid_job_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.yaml").write_text("name: broken\nsplit: {}\n", encoding="utf-8")
    assert cli.main(["--jobs-dir", str(tmp_path), "jobs"]) == 2
    assert "broken.yaml" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("cron(99 99 * * ? *)", "minutes field '99': 99 is outside 0-59"),
        ("cron(hello)", "cron takes 6 fields"),
        ("rate(5 hour)", "plural"),
    ],
)
def test_a_bad_schedule_fails_jobs_naming_file_field_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], expression: str, words: str
) -> None:
    spec = (JOBS_DIR / "ztf-alerts-daily.yaml").read_text(encoding="utf-8")
    assert "cron(0 6 * * ? *)" in spec
    broken = spec.replace("cron(0 6 * * ? *)", expression)
    (tmp_path / "ztf-alerts-daily.yaml").write_text(broken, encoding="utf-8")
    assert cli.main(["--jobs-dir", str(tmp_path), "jobs"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(
        "stepburst: error: ztf-alerts-daily.yaml: triggers.schedule.expression: "
    )
    assert words in error
    assert error.count("\n") == 1


def test_two_files_of_one_job_fail_jobs_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = (JOBS_DIR / "ztf-alerts-daily.yaml").read_text(encoding="utf-8")
    (tmp_path / "ztf-alerts-daily.yaml").write_text(spec, encoding="utf-8")
    (tmp_path / "ztf-alerts-daily.yml").write_text(spec, encoding="utf-8")
    assert cli.main(["--jobs-dir", str(tmp_path), "jobs"]) == 2
    error = capsys.readouterr().err
    assert "ztf-alerts-daily.yaml and ztf-alerts-daily.yml" in error


def test_start_previews_without_starting(
    cloud: Cloud, stack_outputs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.s3.put_object(Bucket=cloud.input_bucket, Key="incoming/yelp/b.jsonl", Body=b"{}\n" * 9)
    code, text = run_cli(
        monkeypatch, "start", "yelp-business-scores", "--input", '{"key": "incoming/yelp/b.jsonl"}'
    )
    assert code == 0
    assert "preview only" in text
    assert "routes: lambda: 1" in text
    executions = boto3.client("stepfunctions").list_executions(
        stateMachineArn=stack_outputs["StateMachineArn"]
    )["executions"]
    assert executions == []


def test_the_preview_estimates_the_bill_computed_by_hand(
    stack_outputs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    code, text = run_cli(monkeypatch, "start", "ztf-alerts-daily", "--date", "20190302", "--json")
    assert code == 0
    summary = json.loads(text)
    assert (summary["units"], summary["routes"]) == (1, {"ecs": 1})
    seconds = float(summary["estimated_seconds"])

    # Step Functions Standard, $0.025 per 1,000 transitions: the coordinator's 8, 1 for
    # starting the one child, 4 in the child.
    step_functions = (8 + 1 + 4) * 0.025 / 1000
    # Fargate on demand, Linux x86_64, us-east-1: 1 vCPU at $0.04048 and 2 GB at $0.004445 an
    # hour, billed for one minute at least.
    containers = max(seconds, 60) / 3600 * (1 * 0.04048 + 2 * 0.004445)
    estimated = summary["estimated_cost_usd"]
    assert estimated["step_functions"] == pytest.approx(step_functions)
    assert estimated["lambda"] == 0
    assert estimated["containers"] == pytest.approx(containers, abs=1e-8)
    assert estimated["total"] == pytest.approx(step_functions + containers, abs=1e-8)


def test_start_with_apply_starts_one_execution_with_the_params(
    stack_outputs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No Plan runs here to record the run: waiting for it would only spend the test's time.
    monkeypatch.setattr(operations, "RUN_RECORD_WAIT_SECONDS", 0.0)
    code, text = run_cli(
        monkeypatch,
        "start",
        "ztf-alerts-daily",
        "--date",
        "20190302",
        "--param",
        "URL_TEMPLATE=https://example.org/{date}.tgz",
        "--apply",
        "--json",
    )
    assert code == 0
    summary = json.loads(text)
    assert summary["routes"] == {"ecs": 1}
    assert summary["run_id"].startswith("ztf-alerts-daily-")
    described = boto3.client("stepfunctions").describe_execution(
        executionArn=summary["execution_arn"]
    )
    assert json.loads(described["input"]) == {
        "job": "ztf-alerts-daily",
        "input": {"date": "20190302"},
        "params": {"URL_TEMPLATE": "https://example.org/{date}.tgz"},
    }


def _record_the_run_late(ops: Operations, machine_arn: str, delay: float) -> None:
    """What Plan does, ``delay`` seconds after the execution started: record its run."""
    sfn = boto3.client("stepfunctions")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        executions = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
        if executions:
            break
        time.sleep(0.05)
    else:
        return
    time.sleep(delay)
    execution = executions[0]
    job = ops.catalog.get("ztf-alerts-daily")
    run_id = run_id_for(job, execution["startDate"], execution["executionArn"])
    ops.ledger.create_run(
        {
            "run_id": run_id,
            "job": job.name,
            "status": "RUNNING",
            "started_at": "2019-03-02T00:00:00Z",
            "execution_id": execution["executionArn"],
        }
    )


def test_a_started_run_can_be_looked_up_at_once_though_plan_records_it_late(
    stack_outputs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`start --apply` then `status`: the printed run id is in the ledger when start returns."""
    ops = Operations(stack.Stack("local", stack_outputs), JOBS_DIR)
    recorder = threading.Thread(
        target=_record_the_run_late, args=(ops, stack_outputs["StateMachineArn"], 1.0)
    )
    recorder.start()
    try:
        code, text = run_cli(
            monkeypatch, "start", "ztf-alerts-daily", "--date", "20190302", "--apply", "--json"
        )
        assert code == 0, text
        run_id = json.loads(text)["run_id"]
        code, text = run_cli(monkeypatch, "status", run_id, "--json")
    finally:
        recorder.join(timeout=60)
    assert code == 0, text
    assert json.loads(text)["status"] == "RUNNING"


def test_waiting_for_a_run_record_stops_when_the_execution_ended_without_one(
    stack_outputs: dict[str, str],
) -> None:
    ops = Operations(stack.Stack("local", stack_outputs), JOBS_DIR)
    sfn = boto3.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=stack_outputs["StateMachineArn"], input="{}")
    sfn.stop_execution(executionArn=execution["executionArn"], error="Stopped")
    started = Started(
        run_id="ztf-alerts-daily-never-planned", execution_arn=execution["executionArn"]
    )
    began = time.monotonic()
    assert ops.await_run_record(started, wait_seconds=120) is False
    # Stopped on the execution's end, not on the deadline.
    assert time.monotonic() - began < 60
    assert ops.ledger.get_run(started.run_id) is None


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["start", "ztf-alerts-daily", "--date", "2019-3-2"], "input.date"),
        (["start", "ztf-alerts-daily", "--param", "NOEQUALS"], "--param"),
        (["start", "ztf-alerts-daily", "--input", "{not json"], "--input"),
        (["start", "no-such-job"], "no job named 'no-such-job'"),
        (["start", "yelp-business-scores", "--input", "{}"], "input.key"),
        (["status", "no-such-run"], "no run 'no-such-run'"),
        (
            ["start", "dam-periods", "--items", "x1-1000000"],
            "input.items: 1000000 items is over this job's max_items (100000)",
        ),
        (["start", "dam-periods", "--items", "Period01-"], "input.items: 'Period01-'"),
        (["start", "dam-periods", "--items", "01-", "--prefix", "Dam001/Period"], "'01-'"),
        (["start", "dam-periods", "--items", "a", "--padding", "2"], "input.padding"),
        (
            ["start", "ztf-alerts-daily", "--date", "20190302", "--param", "URL=x"],
            "params.URL: job 'ztf-alerts-daily' declares no param 'URL' (its params: URL_TEMPLATE;",
        ),
    ],
)
def test_bad_input_exits_2_and_names_the_field(
    stack_outputs: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    words: str,
) -> None:
    code, _ = run_cli(monkeypatch, *argv)
    assert code == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize(
    ("expression", "count", "last"),
    [
        ("Dam001/Period1-3,7", 4, "Dam001/Period7"),
        ("Dam001-003/Period01-02", 6, "Dam003/Period02"),
    ],
)
def test_start_previews_every_item_of_an_expression(
    stack_outputs: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    expression: str,
    count: int,
    last: str,
) -> None:
    code, text = run_cli(monkeypatch, "start", "dam-periods", "--items", expression)
    assert code == 0
    assert f"job dam-periods: {count} items" in text
    assert last in text


def finished_run(cloud: Cloud, body: bytes) -> dict[str, Any]:
    plan = invoke("plan", plan_payload(upload(cloud, UPLOAD_KEY, body)))
    run_all_units(cloud, plan)
    invoke("finalize", {"plan": plan, "fanout": {}, "execution_id": "arn:aws:states:x"})
    return plan


def test_looking_at_a_finished_run(
    cloud: Cloud,
    stack_outputs: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    plan = finished_run(cloud, sample_lines(500, bad_fraction=0.02))
    run_id = plan["run_id"]

    code, text = run_cli(monkeypatch, "runs", "--job", "yelp-business-scores", "--json")
    assert code == 0
    assert [run["run_id"] for run in json.loads(text)["runs"]] == [run_id]

    code, text = run_cli(monkeypatch, "status", run_id)
    assert code == 0
    assert f"{plan['items']}/{plan['items']} done, 0 failed" in text
    assert "SUCCEEDED" in text

    code, text = run_cli(monkeypatch, "items", run_id, "--failed", "--json")
    assert (code, json.loads(text)["items"]) == (0, [])

    code, text = run_cli(monkeypatch, "results", run_id, "--download", str(tmp_path / "out"))
    assert code == 0
    files = sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert "_SUMMARY.json" in files
    assert "rejects.jsonl" in files
    assert "part-00000.jsonl" in files

    code, text = run_cli(monkeypatch, "cost", run_id, "--json")
    cost = json.loads(text)
    assert code == 0
    assert cost["total"] == pytest.approx(
        cost["step_functions"] + cost["lambda"] + cost["containers"], abs=1e-5
    )
    assert cost["lambda"] > 0
    # The bill by hand, us-east-1, from the ledger's items: one Distributed Map child per unit.
    code, text = run_cli(monkeypatch, "items", run_id, "--json")
    items = json.loads(text)["items"]
    units = {item["unit"] for item in items}
    seconds = sum(float(item.get("duration_seconds") or 0) for item in items)
    # $0.025 per 1,000 transitions: the coordinator's 8; per child 1 (its start) + 3 (its own).
    assert cost["step_functions"] == pytest.approx((8 + len(units) * (1 + 3)) * 0.025 / 1000)
    # Lambda x86_64: the job's 1,769 MB at $0.0000166667 per GB-s, $0.20 per 1M requests.
    lambda_bill = seconds * 1769 / 1024 * 0.0000166667 + len(units) * 0.20 / 1e6
    assert cost["lambda"] == pytest.approx(lambda_bill, abs=1e-8)


def test_a_failed_run_exits_1(
    cloud: Cloud, stack_outputs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = invoke("plan", plan_payload(upload(cloud, UPLOAD_KEY, sample_lines(20))))
    invoke("finalize", {"plan": plan, "fanout": {}, "execution_id": "arn:aws:states:x"})
    code, text = run_cli(monkeypatch, "status", plan["run_id"])
    assert code == 1
    assert "items never finished" in text


def test_operations_prepare_moves_long_item_lists_to_s3(
    cloud: Cloud, stack_outputs: dict[str, str]
) -> None:
    operations = Operations(stack.Stack("local", stack_outputs), JOBS_DIR)
    from stepburst.triggers import ManualStart

    names = [f"Dam{n:05d}/Period01" for n in range(20_000)]
    prepared = operations.prepare(ManualStart(job="ztf-alerts-daily", input={"items": names}))
    key = prepared.input["items_key"]
    assert "items" not in prepared.input
    body = cloud.s3.get_object(Bucket=cloud.input_bucket, Key=key)["Body"].read()
    assert body.decode().splitlines() == names


def test_upload_without_to_needs_one_job_that_takes_the_file(
    cloud: Cloud,
    stack_outputs: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "shops.jsonl"
    data.write_bytes(sample_lines(5))
    # Both yelp jobs take .jsonl files: the user must choose.
    code, _ = run_cli(monkeypatch, "upload", str(data), "--wait", "0")
    assert code == 2
    assert "(incoming/yelp-archive/, incoming/yelp/)" in capsys.readouterr().err

    only = tmp_path / "jobs"
    only.mkdir()
    (only / "yelp-business-scores.yaml").write_bytes(
        (JOBS_DIR / "yelp-business-scores.yaml").read_bytes()
    )
    operations = Operations(stack.Stack("local", stack_outputs), only)
    uploaded = operations.upload(data, None)
    assert uploaded.key == "incoming/yelp/shops.jsonl"
    assert uploaded.job == "yelp-business-scores"
