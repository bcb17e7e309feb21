"""Step pipelines and secrets on the local engine, through the Lambda and the ECS routes.

The secret lives in the engine's SSM as a SecureString; the jobs name only the parameter. The
leak test runs a job whose command prints the secret and fails, then reads everything a user or
a log can see: every CLI output, the functions' and workers' log lines, every ledger record,
every object stepburst wrote and every execution's input and history.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import zipfile
from collections.abc import Iterator

import pytest
from tests.e2e.test_cli import FIXTURE_JOBS, ROOT, Session

from stepburst.observability import SERVICE_NAME
from stepburst_local import LocalEngine

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "tok-7f3a9c-never-shown-81d2"
PARAMETER = "/stepburst-scenarios/api-token"


class _Lines(logging.Handler):
    """Every log line the in-process functions write, formatted as Powertools writes it."""

    def __init__(self, formatter: logging.Formatter | None) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        if formatter is not None:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    root = tmp_path_factory.mktemp("steps")
    jobs_dir = root / "jobs"
    shutil.copytree(ROOT / "jobs", jobs_dir, ignore=shutil.ignore_patterns("__pycache__"))
    for path in FIXTURE_JOBS.iterdir():
        if path.suffix in (".yaml", ".py"):
            shutil.copy(path, jobs_dir / path.name)
    with LocalEngine(ROOT, jobs_dir=jobs_dir, time_scale=0.01, quiet=True) as engine:
        engine.client("ssm").put_parameter(Name=PARAMETER, Value=TOKEN, Type="SecureString")
        yield Session(engine, jobs_dir, root)


@pytest.fixture
def function_logs() -> Iterator[_Lines]:
    logger = logging.getLogger(SERVICE_NAME)
    formatter = next((handler.formatter for handler in logger.handlers), None)
    lines = _Lines(formatter)
    logger.addHandler(lines)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("route", ["lambda", "ecs"])
def test_a_step_job_fetches_runs_and_stores_on_each_route(session: Session, route: str) -> None:
    engine = session.engine
    s3 = engine.client("s3")
    input_bucket = engine.outputs["InputBucketName"]
    output_bucket = engine.outputs["OutputBucketName"]
    for dam in ("Dam001", "Dam002"):
        s3.put_object(
            Bucket=input_bucket,
            Key=f"steps/inputs/{dam}/Period01.zip",
            Body=zipped({"rain.txt": f"{dam} wet wet".encode(), "deep/snow.txt": b"cold"}),
        )
    job = f"scenario-steps-{route}"
    started = session.json("start", job, "--items", "Dam001-002/Period01", "--apply")
    status = session.wait_for_run(started["run_id"])
    assert status["status"] == "SUCCEEDED", status

    listed = session.json("items", started["run_id"])["items"]
    items = {item["value"]: item for item in listed}
    assert sorted(items) == ["Dam001/Period01", "Dam002/Period01"]
    for name, item in items.items():
        assert item["route"] == route
        assert item["result"] == {"token_length": len(TOKEN)}
        key = f"scenarios/steps-{route}/{started['run_id']}/{name}.zip"
        assert item["outputs"] == [f"s3://{output_bucket}/{key}"]
        body = s3.get_object(Bucket=output_bucket, Key=key)["Body"].read()
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            stored = {member: archive.read(member).decode() for member in archive.namelist()}
        # The inputs' word counts, as written into the zip above.
        assert stored == {
            "out/hello.txt": "deep/snow.txt 1\nrain.txt 3\n",
            "out/token.sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
        }


@pytest.mark.parametrize("route", ["lambda", "ecs"])
def test_a_secret_a_command_prints_is_shown_nowhere(
    session: Session, function_logs: _Lines, route: str
) -> None:
    engine = session.engine
    job = f"scenario-secret-leak-{route}"
    shown: dict[str, str] = {}
    for argv in (
        ("start", job, "--items", "a,b"),
        ("start", job, "--items", "a,b", "--json"),
        ("jobs", "--json"),
    ):
        shown[" ".join(argv)] = session.cli(*argv)[1]
    started = session.json("start", job, "--items", "a,b", "--apply")
    run_id = started["run_id"]
    status = session.wait_for_run(run_id)
    assert status["status"] == "FAILED", status
    for argv in (
        ("status", run_id),
        ("status", run_id, "--json"),
        ("items", run_id),
        ("items", run_id, "--json"),
        ("items", run_id, "--failed", "--json"),
        ("runs", "--json"),
        ("runs",),
        ("results", run_id, "--json"),
    ):
        shown[" ".join(argv)] = session.cli(*argv, check=None)[1]

    # The items really failed where the secret was printed, and say so.
    items = session.json("items", run_id)["items"]
    assert {item["status"] for item in items} == {"FAILED"}
    for item in items:
        assert (item["exit_code"], item["failed_step"], item["failed_step_kind"]) == (
            6,
            0,
            "command",
        )
        assert item["output_tail"].strip() == f"token *** {item['value']}"

    # Logs: the in-process functions' lines and every container's output.
    logs = list(function_logs.lines)
    logs += [
        path.read_text(errors="replace") for path in engine.log_dir.rglob("*") if path.is_file()
    ]
    assert any("item failed" in line for line in logs), "no item failure was logged"

    # The ledger, whole; every object stepburst wrote; every execution's input and history.
    ledger = json.dumps(engine.client("dynamodb").scan(TableName=engine.outputs["LedgerTableName"]))
    s3 = engine.client("s3")
    written = []
    for bucket in (engine.outputs["WorkBucketName"], engine.outputs["OutputBucketName"]):
        for entry in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            written.append(
                s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"]
                .read()
                .decode(errors="replace")
            )
    sfn = engine.client("stepfunctions")
    executions = []
    for execution in engine.iter_executions(engine.state_machine_arn):
        arn = execution["executionArn"]
        executions.append(sfn.describe_execution(executionArn=arn).get("input", ""))
        executions.append(json.dumps(engine.history(arn), default=str))

    places = {**shown, "ledger": ledger}
    places.update({f"log {index}": text for index, text in enumerate(logs)})
    places.update({f"object {index}": text for index, text in enumerate(written)})
    places.update({f"execution {index}": text for index, text in enumerate(executions)})
    leaked = sorted(place for place, text in places.items() if TOKEN in text)
    assert leaked == []
    assert any(job in text for text in executions)


def test_commands_on_lambda_run_with_the_jobs_role_not_the_functions(session: Session) -> None:
    engine = session.engine
    job = "scenario-role-lambda"
    role = f"{engine.stack_name}-job-{job}"
    started = session.json("start", job, "--items", "a,b", "--apply")
    status = session.wait_for_run(started["run_id"])
    assert status["status"] == "SUCCEEDED", status

    items = session.json("items", started["run_id"])["items"]
    assert len(items) == 2
    for item in items:
        assert item["route"] == "lambda"
        seen = json.loads(item["output_tail"].strip().splitlines()[-1])
        # moto answers with the role the credentials came from; the function's own would be
        # the engine's user.
        assert f":assumed-role/{role}/{job}-" in seen["caller"], seen
        assert seen["own_credentials"] == []

    # The combine command, on the Combine function.
    run = status["run"]
    assert run.get("combine_status") == "SUCCEEDED", run
    result = run["combine_result"]
    assert f":assumed-role/{role}/{job}-combine" in result["caller"], result
    assert result["own_credentials"] == []
