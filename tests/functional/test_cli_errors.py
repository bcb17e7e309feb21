"""What the CLI says, and exits with, when something goes wrong: one line, never a traceback.

The exit codes are the table in README.md ("The CLI"). AWS is either moto in-process, botocore's
Stubber on the CLI's own cached client, or really out of reach: no region, no credentials, or
an endpoint where nothing listens (127.0.0.1:9, the discard port, is closed on test machines).
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from stepburst import aws, cli, stack
from stepburst.jobs import JobCatalog

from .conftest import JOBS_DIR, Cloud

pytestmark = pytest.mark.functional

NOTHING_LISTENS = "http://127.0.0.1:9"
# Every variable through which botocore finds a region, credentials or an endpoint.
AWS_SETUP = (
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)
SUBPROCESS_SECONDS = 120


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A machine with no AWS set up: no region, no credentials, no config files, no IMDS."""
    for name in AWS_SETUP:
        # set then delete, so whatever the CLI sets (--local does) is undone after the test
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws.reset_clients()
    yield
    aws.reset_clients()


def no_aws_environment(tmp_path: Path) -> dict[str, str]:
    """The same for a child process."""
    environment = {k: v for k, v in os.environ.items() if k not in AWS_SETUP}
    environment.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return environment


def publish_local_stack(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, *, ledger_table: str
) -> None:
    """`--local` served by the in-process moto: the outputs where `stepburst local up` puts them."""
    monkeypatch.setattr(stack, "use_local_endpoint", lambda endpoint: None)
    monkeypatch.setattr(cli, "local_engine_listens", lambda endpoint: True)
    outputs = {
        "InputBucketName": cloud.input_bucket,
        "OutputBucketName": cloud.output_bucket,
        "WorkBucketName": cloud.work_bucket,
        "LedgerTableName": ledger_table,
        "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:coordinator",
        "LedgerRetentionDays": "30",
    }
    boto3.client("ssm").put_parameter(
        Name=stack.LOCAL_OUTPUTS_PARAMETER, Value=json.dumps(outputs), Type="String"
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    out_before, err_before = capsys.readouterr()
    del out_before, err_before
    code = cli.main(["--jobs-dir", str(JOBS_DIR), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    """stderr must be exactly one line starting with the program's name."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("stepburst: "), err
    assert "Traceback" not in err
    return lines[0]


# -- files named on the command line -----------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "argv"),
    [
        ("--input", ["--input", "@{path}"]),
        ("--items-file", ["--items-file", "{path}"]),
    ],
)
@pytest.mark.usefixtures("no_aws")
def test_a_missing_file_is_named_with_its_flag(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    argv: list[str],
) -> None:
    missing = tmp_path / "missing.txt"
    given = [arg.format(path=missing) for arg in argv]
    # No AWS is set up: the input is checked before anything is asked of AWS.
    code, _, err = run(capsys, "start", "dam-periods", *given)
    assert code == cli.EXIT_USAGE
    line = one_line(err)
    assert flag in line
    assert str(missing) in line
    assert "No such file or directory" in line


@pytest.mark.parametrize(
    ("flag", "argv", "problem"),
    [
        ("--input", ["--input", "@{directory}"], "Is a directory"),
        ("--items-file", ["--items-file", "{directory}"], "Is a directory"),
        ("--items-file", ["--items-file", "{latin1}"], "not UTF-8 text"),
        ("--input", ["--input", "@{latin1}"], "not UTF-8 text"),
    ],
)
@pytest.mark.usefixtures("no_aws")
def test_an_unreadable_file_is_named_with_its_flag(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    argv: list[str],
    problem: str,
) -> None:
    latin1 = tmp_path / "items.txt"
    latin1.write_bytes("Dam001/Période01\n".encode("latin-1"))
    given = [arg.format(directory=tmp_path, latin1=latin1) for arg in argv]
    code, _, err = run(capsys, "start", "dam-periods", *given)
    assert code == cli.EXIT_USAGE
    line = one_line(err)
    assert flag in line
    assert problem in line


def test_an_items_file_gives_one_item_a_line(
    cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = tmp_path / "items.txt"
    items.write_text("Dam001/Period01\nDam001/Period02  # the second\n\n", encoding="utf-8")
    publish_local_stack(cloud, monkeypatch, ledger_table=cloud.table)
    out = io.StringIO()
    code = cli.main(
        [
            "--local",
            "--jobs-dir",
            str(JOBS_DIR),
            "start",
            "dam-periods",
            "--items-file",
            str(items),
            "--json",
        ],
        out=out,
    )
    assert code == cli.EXIT_OK
    assert json.loads(out.getvalue())["items"] == 2


# -- AWS could not be reached: exit 4, with what to set ----------------------------------------


@pytest.mark.usefixtures("no_aws")
def test_no_region_says_what_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--stack", "stepburst", "runs")
    assert code == cli.EXIT_AWS_UNREACHABLE
    line = one_line(err)
    assert "region" in line
    assert "AWS_REGION" in line


@pytest.mark.usefixtures("no_aws")
def test_no_credentials_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    code, _, err = run(capsys, "--stack", "stepburst", "runs")
    assert code == cli.EXIT_AWS_UNREACHABLE
    line = one_line(err)
    assert "credentials" in line
    assert "AWS_PROFILE" in line


@pytest.mark.usefixtures("no_aws")
def test_no_local_engine_fails_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code, _, err = run(capsys, "--local", "--endpoint", NOTHING_LISTENS, "runs")
    assert code == cli.EXIT_AWS_UNREACHABLE
    line = one_line(err)
    assert NOTHING_LISTENS in line
    assert "stepburst local up" in line
    # botocore retries a refused connection for half a minute; a new user should not wait.
    assert time.monotonic() - started < 5


@pytest.mark.slow
def test_an_endpoint_that_does_not_answer_is_unreachable(tmp_path: Path) -> None:
    environment = no_aws_environment(tmp_path)
    environment.update(
        AWS_ENDPOINT_URL=NOTHING_LISTENS,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    completed = subprocess.run(
        [sys.executable, "-m", "stepburst.cli", "--stack", "stepburst", "runs"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=SUBPROCESS_SECONDS,
        check=False,
    )
    assert completed.returncode == cli.EXIT_AWS_UNREACHABLE, completed.stderr
    line = one_line(completed.stderr)
    assert NOTHING_LISTENS in line
    assert "AWS_ENDPOINT_URL" in line


# -- AWS answered with an error: exit 3, with AWS's code and message ---------------------------


@pytest.mark.usefixtures("no_aws")
def test_access_denied_shows_the_aws_code_and_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    denied = (
        "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: "
        "cloudformation:DescribeStacks"
    )
    with Stubber(aws.client("cloudformation")) as stubber:
        stubber.add_client_error(
            "describe_stacks", service_error_code="AccessDenied", service_message=denied
        )
        code, _, err = run(capsys, "--stack", "stepburst", "runs")
        stubber.assert_no_pending_responses()
    assert code == cli.EXIT_AWS_ERROR
    line = one_line(err)
    assert "AccessDenied" in line
    assert denied in line


def test_a_missing_table_shows_the_aws_code(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_local_stack(cloud, monkeypatch, ledger_table="no-such-table")
    code, _, err = run(capsys, "--local", "runs")
    assert code == cli.EXIT_AWS_ERROR
    assert "ResourceNotFoundException" in one_line(err)


# -- domain errors and bugs ----------------------------------------------------------------------


def test_a_multi_line_domain_error_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.yaml").write_text("name: broken\nsplit: [unclosed\n", encoding="utf-8")
    code = cli.main(["--jobs-dir", str(tmp_path), "jobs"])
    assert code == cli.EXIT_USAGE
    assert "broken.yaml" in one_line(capsys.readouterr().err)


def _catalog_with_a_bug(directory: Path) -> JobCatalog:
    raise ZeroDivisionError("division by zero")


def test_an_unexpected_error_is_one_line_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(JobCatalog, "from_directory", staticmethod(_catalog_with_a_bug))
    code, _, err = run(capsys, "jobs")
    assert code == cli.EXIT_UNEXPECTED
    line = one_line(err)
    assert "ZeroDivisionError: division by zero" in line
    assert "--debug" in line


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    monkeypatch.setattr(JobCatalog, "from_directory", staticmethod(_catalog_with_a_bug))
    argv = ["--debug", "jobs"] if where == "before" else ["jobs", "--debug"]
    code, _, err = run(capsys, *argv)
    assert code == cli.EXIT_UNEXPECTED
    assert "Traceback (most recent call last)" in err
    assert "_catalog_with_a_bug" in err
    assert err.splitlines()[-1].startswith("stepburst: error: unexpected error: ZeroDivisionError")


@pytest.mark.usefixtures("no_aws")
def test_debug_shows_the_cause_of_a_domain_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--debug", "--stack", "stepburst", "runs")
    assert code == cli.EXIT_AWS_UNREACHABLE
    assert "NoRegionError" in err
    assert err.splitlines()[-1].startswith("stepburst: ")


# -- the terminal: pipes and Ctrl-C --------------------------------------------------------------


@pytest.mark.parametrize("listing", [["jobs", "--json"], ["jobs"]])
def test_a_closed_pipe_ends_the_cli_quietly(tmp_path: Path, listing: list[str]) -> None:
    """`stepburst jobs --json | head -1`: head leaves after a line; so does stepburst."""
    command = [sys.executable, "-m", "stepburst.cli", "--jobs-dir", str(JOBS_DIR), *listing]
    reader = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=no_aws_environment(tmp_path),
    )
    assert reader.stdout is not None
    # Every reader gone before the first write: the write is sure to break the pipe.
    reader.stdout.close()
    _, err = reader.communicate(timeout=SUBPROCESS_SECONDS)
    assert reader.returncode == cli.EXIT_BROKEN_PIPE, err
    assert err == b""


def test_ctrl_c_exits_130_with_one_line(tmp_path: Path) -> None:
    """Interrupted while AWS is slow to answer: here, an endpoint that accepts and says nothing."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        silent.settimeout(SUBPROCESS_SECONDS)
        process = subprocess.Popen(
            [sys.executable, "-m", "stepburst.cli", "--local", "--endpoint", endpoint, "runs"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=no_aws_environment(tmp_path),
        )
        try:
            waiting: list[socket.socket] = []
            # Wait for the request itself, so the CLI is surely waiting for the answer.
            while True:
                connection, _ = silent.accept()
                waiting.append(connection)
                connection.settimeout(SUBPROCESS_SECONDS)
                if connection.recv(1024):
                    break
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=SUBPROCESS_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            for connection in waiting:
                connection.close()
    assert process.returncode == cli.EXIT_INTERRUPTED, err
    assert one_line(err.decode()) == "stepburst: interrupted"
    assert out == b""
