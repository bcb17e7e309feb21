"""The stepburst CLI against the local engine, as a user runs it with `stepburst local up`.

Every command runs as its own process (`python -m stepburst.cli --local ...`), so exit codes,
output and the engine's endpoint are exercised exactly as from a terminal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.polling import Pending, ended_execution, failed_execution, poll

from stepburst_local import LocalEngine, samples
from stepburst_local.dam_inputs import dam_periods, write_inputs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_JOBS = ROOT / "tests" / "fixtures" / "jobs"
DEADLINE_SECONDS = 60


@dataclass
class Session:
    engine: LocalEngine
    jobs_dir: Path
    markers: Path

    def cli(self, *argv: str, check: int | None = 0, stdin: str | None = None) -> tuple[int, str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "stepburst.cli",
                "--local",
                "--endpoint",
                self.engine.endpoint_url,
                "--jobs-dir",
                str(self.jobs_dir),
                *argv,
            ],
            capture_output=True,
            text=True,
            env=environment,
            input=stdin,
            timeout=DEADLINE_SECONDS,
            check=False,
        )
        if check is not None:
            assert completed.returncode == check, completed.stdout + completed.stderr
        return completed.returncode, completed.stdout + completed.stderr

    def json(self, *argv: str, check: int | None = 0, stdin: str | None = None) -> Any:
        _, text = self.cli(*argv, "--json", check=check, stdin=stdin)
        return json.loads(text)

    def ledger_run(self, run_id: str) -> dict[str, Any]:
        return dict(self.json("status", run_id, check=None)["run"])

    def wait_for_run(self, run_id: str) -> dict[str, Any]:
        code, text = self.cli(
            "status", run_id, "--watch", "--interval", "0.2", "--json", check=None
        )
        assert code in (0, 1), text
        # NDJSON: one status a change, the final one last.
        documents = [line for line in text.splitlines() if line.startswith("{")]
        return dict(json.loads(documents[-1]))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    root = tmp_path_factory.mktemp("cli")
    jobs_dir = root / "jobs"
    shutil.copytree(ROOT / "jobs", jobs_dir, ignore=shutil.ignore_patterns("__pycache__"))
    for path in FIXTURE_JOBS.iterdir():
        if path.suffix in (".yaml", ".py"):
            shutil.copy(path, jobs_dir / path.name)
    markers = root / "markers"
    markers.mkdir()
    with LocalEngine(ROOT, jobs_dir=jobs_dir, time_scale=0.01, quiet=True) as engine:
        yield Session(engine, jobs_dir, markers)


def runs_of(session: Session, job: str) -> list[dict[str, Any]]:
    return list(session.json("runs", "--job", job, "--limit", "100")["runs"])


def test_jobs_lists_every_job_file(session: Session) -> None:
    names = {job["name"] for job in session.json("jobs")["jobs"]}
    assert {"yelp-business-scores", "dam-periods", "ztf-alerts-daily", "scenario-ecs"} <= names


def test_upload_prints_the_run_and_it_succeeds(session: Session, tmp_path: Path) -> None:
    data = tmp_path / "businesses.jsonl"
    samples.write_business_file(data, 60_000, seed=3)
    uploaded = session.json("upload", str(data), "--to", "incoming/yelp/")
    assert uploaded["job"] == "yelp-business-scores"
    status = session.wait_for_run(uploaded["run_id"])
    assert status["status"] == "SUCCEEDED"

    download = tmp_path / "out"
    result = session.json("results", uploaded["run_id"], "--download", str(download))
    assert (
        result["downloaded"]["files"] == len([p for p in download.rglob("*") if p.is_file()]) >= 2
    )
    assert session.json("items", uploaded["run_id"], "--failed")["items"] == []
    assert session.json("cost", uploaded["run_id"])["total"] > 0


def test_duplicate_deliveries_make_one_run_and_a_new_version_another(
    session: Session, tmp_path: Path
) -> None:
    data = tmp_path / "dupes.jsonl"
    samples.write_business_file(data, 20_000, seed=4)
    key = "incoming/yelp/dupes.jsonl"
    uploaded = session.json("upload", str(data), "--to", key)
    (first,) = session.engine.executions_for_upload(key)
    session.engine.wait_for_execution(first, timeout=DEADLINE_SECONDS)

    # EventBridge delivers at least once: the same event ten more times, all at once.
    described = session.engine.client("stepfunctions").describe_execution(executionArn=first)
    event = json.loads(described["input"])
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": event["resources"],
    }
    events = session.engine.client("events")
    threads = [
        threading.Thread(target=events.put_events, kwargs={"Entries": [entry]}) for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_SECONDS)
    arns = session.engine.executions_for_upload(key, expected=11, timeout=DEADLINE_SECONDS)
    for arn in arns:
        session.engine.wait_for_execution(arn, timeout=DEADLINE_SECONDS)
    runs = [run for run in runs_of(session, "yelp-business-scores") if run["trigger"]["key"] == key]
    assert [run["run_id"] for run in runs] == [uploaded["run_id"]]

    again = session.json("upload", str(data), "--to", key)
    assert again["run_id"] not in (None, uploaded["run_id"])
    assert session.wait_for_run(again["run_id"])["status"] == "SUCCEEDED"


def test_an_upload_no_job_matches_is_ignored(session: Session, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not for any job\n", encoding="utf-8")
    code, text = session.cli("upload", str(notes), "--to", "elsewhere/")
    assert code == 0
    assert "the uploads rule starts no run for it" in text
    # The rule's pattern holds only the jobs' prefixes: no execution, nothing to record.
    assert session.engine.executions_for_upload("elsewhere/notes.txt", expected=0) == []


@pytest.mark.parametrize(
    "name", ["with space.jsonl", "plus+sign.jsonl", "ünïcødé €.jsonl", "percent%2Fname.jsonl"]
)
def test_awkward_keys_work(session: Session, tmp_path: Path, name: str) -> None:
    data = tmp_path / "data.jsonl"
    samples.write_business_file(data, 5_000, seed=5)
    uploaded = session.json("upload", str(data), "--to", f"incoming/yelp/{name}")
    assert uploaded["run_id"], uploaded
    status = session.wait_for_run(uploaded["run_id"])
    assert status["status"] == "SUCCEEDED"
    assert status["run"]["trigger"]["key"] == f"incoming/yelp/{name}"


def test_preview_starts_nothing_and_apply_starts(session: Session, tmp_path: Path) -> None:
    machine = session.engine.state_machine_arn
    before = len(list(session.engine.iter_executions(machine)))
    code, text = session.cli(
        "start", "dam-periods", "--items", "Dam001/Period01-16", "--param", "MODE_STR=full"
    )
    assert code == 0
    assert "16 items" in text
    assert "preview only" in text
    assert len(list(session.engine.iter_executions(machine))) == before

    # The job fetches each period's zipped inputs: upload them first, as its users do.
    inputs = tmp_path / "inputs"
    write_inputs(inputs, dam_periods(range(1, 2), range(1, 4)))
    bucket = session.engine.outputs["InputBucketName"]
    session.cli("sync", str(inputs), f"s3://{bucket}/input/", "--zip-each", "Dam*/Period*")
    started = session.json(
        "start",
        "dam-periods",
        "--items",
        "01-03",
        "--prefix",
        "Dam001/Period",
        "--padding",
        "2",
        "--param",
        "MODE_STR=full",
        "--apply",
    )
    status = session.wait_for_run(started["run_id"])
    assert status["status"] == "SUCCEEDED", status
    listed = session.engine.client("s3").list_objects_v2(
        Bucket=session.engine.outputs["OutputBucketName"],
        Prefix=f"dams/{started['run_id']}/Dam001/",
    )
    results = sorted(entry["Key"].rsplit("/", 1)[-1] for entry in listed["Contents"])
    assert results == ["Period01.zip", "Period02.zip", "Period03.zip"]


def test_items_from_stdin_and_params_reach_the_container(session: Session) -> None:
    started = session.json(
        "start",
        "scenario-ecs",
        "--items-file",
        "-",
        "--param",
        "GREETING=bonjour",
        "--apply",
        stdin="env-GREETING\n# a comment\nok-1\n",
    )
    assert session.wait_for_run(started["run_id"])["status"] == "SUCCEEDED"
    items = {item["value"]: item for item in session.json("items", started["run_id"])["items"]}
    assert items["env-GREETING"]["route"] == "ecs"
    assert items["env-GREETING"]["result"]["environment"] == "bonjour"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["start", "dam-periods", "--items", "Period16-01"], "input.items"),
        (["start", "dam-periods", "--items", "a", "--padding", "0"], "input.padding"),
        (["start", "ztf-alerts-daily", "--date", "2019-3-2"], "input.date"),
        (["start", "yelp-business-scores", "--input", "{}"], "input.key"),
        (["start", "dam-periods", "--items", "a", "--param", "BAD NAME=x"], "params.BAD NAME"),
        (["start", "nope"], "no job named 'nope'"),
    ],
)
def test_invalid_input_is_refused_naming_the_field(
    session: Session, argv: list[str], words: str
) -> None:
    machine = session.engine.state_machine_arn
    before = len(list(session.engine.iter_executions(machine)))
    code, text = session.cli(*argv, "--apply", check=None)
    assert code == 2
    assert words in text
    assert len(list(session.engine.iter_executions(machine))) == before


def test_start_execution_input_is_validated_in_the_state_machine(session: Session) -> None:
    arn = session.engine.start_execution(
        {"job": "ztf-alerts-daily", "input": {"date": "yesterday"}}
    )
    described = session.engine.wait_for_execution(arn, timeout=DEADLINE_SECONDS)
    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidInputError"
    assert "input.date" in described["cause"]


def test_cancel_stops_the_running_containers(session: Session) -> None:
    started = session.json("start", "scenario-ecs", "--items", "sleep-60", "--apply")
    run_id = started["run_id"]

    def item_running() -> bool | Pending:
        items: dict[str, int] = session.json("status", run_id, check=None)["items"]
        return items.get("RUNNING", 0) >= 1 or Pending(items)

    poll(
        item_running,
        fail_if=lambda: ended_execution(
            session.engine.describe_execution(started["execution_arn"])
        ),
        what=f"run {run_id}'s container starts",
        timeout=DEADLINE_SECONDS,
        interval=0.2,
    )
    ecs = session.engine.client("ecs")
    cluster = session.engine.outputs["ClusterArn"]
    running = ecs.list_tasks(cluster=cluster, startedBy=run_id)["taskArns"]
    assert running

    cancelled = session.json("cancel", run_id)["stopped"]
    assert cancelled["executions"] == 1

    def tasks_stopped() -> bool | Pending:
        tasks = ecs.describe_tasks(cluster=cluster, tasks=running)["tasks"]
        statuses = [task["lastStatus"] for task in tasks]
        return all(status == "STOPPED" for status in statuses) or Pending(statuses)

    poll(
        tasks_stopped,
        what=f"the cancelled run {run_id}'s ECS tasks stop",
        timeout=DEADLINE_SECONDS,
        interval=0.1,
    )
    _, text = session.cli("status", run_id, check=1)
    assert "CANCELLED" in text
    described = session.engine.describe_execution(started["execution_arn"])
    assert described["status"] == "ABORTED"
    (item,) = session.json("items", run_id)["items"]
    assert item["status"] == "CANCELLED"

    # Cancelling it again is refused, and changes nothing.
    _, again = session.cli("cancel", run_id, check=2)
    assert "already ended CANCELLED" in again
    assert "Traceback" not in again


def test_a_finished_run_cannot_be_cancelled_or_redriven_when_all_succeeded(
    session: Session,
) -> None:
    started = session.json("start", "scenario-lambda", "--items", "ok-a,ok-b", "--apply")
    run_id = started["run_id"]
    assert session.wait_for_run(run_id)["status"] == "SUCCEEDED"

    _, cancelled = session.cli("cancel", run_id, check=2)
    assert "already ended SUCCEEDED: nothing to cancel" in cancelled
    _, redriven = session.cli("redrive", run_id, check=2)
    assert "nothing to redrive" in redriven
    assert session.ledger_run(run_id)["status"] == "SUCCEEDED"
    assert {item["status"] for item in session.json("items", run_id)["items"]} == {"SUCCEEDED"}


def test_redrive_runs_only_the_failed_items_again(session: Session) -> None:
    started = session.json(
        "start",
        "scenario-lambda",
        "--items",
        "ok-1,flaky-redrive,ok-3",
        "--param",
        f"MARKER_DIR={session.markers}",
        "--apply",
    )
    run_id = started["run_id"]
    assert session.wait_for_run(run_id)["status"] == "FAILED"
    failed = session.json("items", run_id, "--failed")["items"]
    assert [item["value"] for item in failed] == ["flaky-redrive"]

    redriven = session.json("redrive", run_id)
    poll(
        lambda: session.ledger_run(run_id).get("redrives") == 1,
        fail_if=lambda: failed_execution(
            session.engine.describe_execution(redriven["execution_arn"])
        ),
        what=f"run {run_id} records its redrive",
        timeout=DEADLINE_SECONDS,
        interval=0.2,
    )
    status = session.wait_for_run(run_id)
    assert status["status"] == "SUCCEEDED", status
    # The first execution's failure is not the run's story any more.
    assert not session.ledger_run(run_id).get("cause")
    items = {item["value"]: item for item in session.json("items", run_id)["items"]}
    assert items["flaky-redrive"]["attempts"] == 2
    assert items["flaky-redrive"]["history"][0]["class"] == "application"
    assert items["ok-1"]["attempts"] == 1
    assert items["ok-3"]["attempts"] == 1


def test_schedules_appear_and_disappear_with_job_files(session: Session) -> None:
    scheduler = session.engine.client("scheduler")
    group = session.engine.stack_name

    def names() -> set[str]:
        listed = scheduler.list_schedules(GroupName=group)["Schedules"]
        return {schedule["Name"] for schedule in listed}

    assert "job-ztf-alerts-daily" in names()
    nightly = session.jobs_dir / "dam-nightly.yaml"
    nightly.write_text(
        (session.jobs_dir / "dam-periods.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "name: dam-periods",
            "name: dam-nightly\ntriggers:\n  schedule:\n    expression: cron(30 1 * * ? *)\n"
            "    timezone: Europe/Oslo\n    input: {items: Dam001/Period01-02}",
        ),
        encoding="utf-8",
    )
    try:
        session.engine.run_custom_resources("Update")
        assert "job-dam-nightly" in names()
        schedule = scheduler.get_schedule(Name="job-dam-nightly", GroupName=group)
        assert schedule["ScheduleExpressionTimezone"] == "Europe/Oslo"
    finally:
        nightly.unlink()
    session.engine.run_custom_resources("Update")
    assert "job-dam-nightly" not in names()


INVALID_JOBS = {
    "unknown field": ("colour: blue\n", "(top level)"),
    "bad timezone": (
        "triggers:\n  schedule: {expression: 'rate(1 day)', timezone: Mars/Base}\n",
        "triggers.schedule.timezone",
    ),
    "bad schedule": (
        "triggers:\n  schedule: {expression: 'daily'}\n",
        "triggers.schedule.expression",
    ),
    "function and command": ("run: {function: 'a:b', command: 'x'}\n", "run"),
    "bad cpu": ("compute: {cpu: 3}\n", "compute.cpu"),
}


@pytest.mark.parametrize("case", sorted(INVALID_JOBS))
def test_every_invalid_job_file_has_a_clear_error(
    session: Session, tmp_path: Path, case: str
) -> None:
    change, field = INVALID_JOBS[case]
    spec = (ROOT / "jobs" / "dam-periods.yaml").read_text(encoding="utf-8")
    # Drop the run and compute blocks, each a key and the lines indented under it.
    kept_lines: list[str] = []
    dropping = False
    for line in spec.splitlines():
        if not line.startswith(" "):
            dropping = line.startswith(("run:", "compute:"))
        if not dropping:
            kept_lines.append(line)
    kept = "\n".join(kept_lines)
    broken = tmp_path / "dam-periods.yaml"
    if case != "function and command":
        kept += "\nrun:\n  command: echo {ITEM}\n"
    broken.write_text(kept + "\n" + change, encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "stepburst.cli", "--jobs-dir", str(tmp_path), "jobs"],
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )
    assert completed.returncode == 2
    assert f"dam-periods.yaml: {field}" in completed.stderr


def test_logs_show_a_failed_items_traceback(session: Session) -> None:
    started = session.json("start", "scenario-lambda", "--items", "ok-logs,fail-logs", "--apply")
    run_id = started["run_id"]
    assert session.wait_for_run(run_id)["status"] == "FAILED"

    code, text = session.cli("logs", run_id, "--item", "fail-logs")
    assert code == 0, text
    assert "item failed" in text
    assert "Traceback (most recent call last)" in text
    assert "item fail-logs fails on purpose" in text
    assert "ok-logs" not in text

    lines = [json.loads(line) for line in session.cli("logs", run_id, "--json")[1].splitlines()]
    assert {line["run_id"] for line in lines} == {run_id}
    # A quiet engine logs warnings and errors only: the failed item's, from ProcessItems.
    assert "process-items" in {line["source"] for line in lines}
    failed = [line for line in lines if line["exception"]]
    assert failed
    assert "ScenarioItemError" in failed[0]["exception"]

    code, text = session.cli("logs", run_id, "--item", "no-such-item", check=2)
    assert "fail-logs" in text


def test_without_job_files_the_cli_uses_the_engines_jobs(session: Session, tmp_path: Path) -> None:
    """A user without the repository: the jobs come from what the deploy published."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STEPBURST_"))}

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "stepburst.cli",
                *argv,
                "--local",
                "--endpoint",
                session.engine.endpoint_url,
            ],
            capture_output=True,
            text=True,
            env=environment,
            cwd=tmp_path,
            timeout=DEADLINE_SECONDS,
            check=False,
        )

    listed = cli("jobs", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {job["name"] for job in json.loads(listed.stdout)["jobs"]}
    assert {"scenario-lambda", "dam-periods"} <= names

    refused = cli("start", "not-deployed", "--apply")
    assert refused.returncode == 2
    assert "no job named 'not-deployed'" in refused.stderr
    assert "scenario-lambda" in refused.stderr


def test_cancel_before_any_unit_started_ends_the_run_cancelled_for_good(
    session: Session,
) -> None:
    # No capacity: the run's ECS tasks are never placed, so no unit starts before the cancel.
    session.engine.faults.ecs_capacity(reason="RESOURCE:MEMORY", times=10_000)
    invocations = session.engine.lambda_runtime.invocations
    reconciled = invocations.get("ReconcileFunction", 0)
    try:
        started = session.json("start", "scenario-ecs", "--items", "ok-1,ok-2", "--apply")
        run_id = started["run_id"]
        cancelled = session.json("cancel", run_id)
        assert cancelled["stopped"]["executions"] == 1
        assert cancelled["stopped"]["ecs_tasks"] == 0

        arn = started["execution_arn"]
        assert session.engine.wait_for_execution(arn, timeout=60)["status"] == "ABORTED"
        # The stop's event reaches ReconcileFunction; it must not change the cancelled run.
        poll(
            lambda: (
                invocations.get("ReconcileFunction", 0) > reconciled or Pending("no reconcile yet")
            ),
            what=f"run {run_id}'s stopped execution is reconciled",
            timeout=DEADLINE_SECONDS,
            interval=0.1,
        )
    finally:
        session.engine.faults.clear()
    run = session.ledger_run(run_id)
    assert run["status"] == "CANCELLED"
    statuses = {item["status"] for item in session.json("items", run_id)["items"]}
    assert statuses <= {"CANCELLED"}, statuses
    _, again = session.cli("cancel", run_id, check=2)
    assert "already ended CANCELLED" in again
