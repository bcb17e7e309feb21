"""`stepburst local up` as a process: a busy port, signals, and no endpoint before the stack.

Each test runs the real command (`python -m stepburst.cli local up`) on the project's own
template, and every wait has a deadline, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from tests.polling import Pending, poll

from stepburst.stack import LOCAL_OUTPUTS_PARAMETER
from stepburst_local.server import serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# Deploying the stack takes a few seconds; far more on a loaded two-core machine.
READY_SECONDS = 180
STOP_SECONDS = 30
BUSY_PORT_SECONDS = 30
DEPLOYING = "deploying"
READY = "Ctrl-C stops it"


class LocalUp:
    """A running `stepburst local up`, its output collected line by line as it comes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stepburst.cli",
                "local",
                "up",
                "--port",
                str(port),
                "--project",
                str(ROOT),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._collect, args=(self.process.stdout, self.out)),
            threading.Thread(target=self._collect, args=(self.process.stderr, self.err)),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.out) + "".join(self.err)

    def printed(self, text: str) -> bool:
        return any(text in line for line in self.out)

    def exited(self) -> str | None:
        """What it printed, if it has exited: a wait for it to do something has failed."""
        code = self.process.poll()
        return None if code is None else f"exited {code}: {self.output}"

    def wait_for(self, text: str, timeout: float) -> None:
        """Until ``text`` is printed; fails at once if the process ends first."""
        poll(
            lambda: self.printed(text) or Pending(self.output),
            what=f"`local up` prints {text!r}",
            timeout=timeout,
            interval=0.05,
            fail_if=self.exited,
        )

    def signal_and_wait(self, signum: signal.Signals) -> int:
        """Send ``signum``; the exit code, which must come within STOP_SECONDS."""
        self.process.send_signal(signum)
        return self.finish()

    def finish(self, timeout: float = STOP_SECONDS) -> int:
        try:
            code = self.process.wait(timeout)
        finally:
            self.close()
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for reader in self._readers:
            reader.join(STOP_SECONDS)


@pytest.fixture
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def local_up(free_port: int) -> Iterator[LocalUp]:
    running = LocalUp(free_port)
    yield running
    running.close()


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def client(service: str, endpoint: str) -> Any:
    session: Any = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    once = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return session.client(service, endpoint_url=endpoint, config=once)


def refused_until_deployed(local_up: LocalUp) -> int:
    """Knock on the port until `local up` says it is ready; how many knocks were refused.

    Whatever answers must be the deployed stack: its outputs are published (the deploy's last
    step, and what `stepburst --local` reads first).
    """
    ssm = client("ssm", f"http://127.0.0.1:{local_up.port}")
    refused = 0

    def ready() -> bool | Pending:
        nonlocal refused
        if local_up.printed(READY):
            return True
        try:
            ssm.get_parameter(Name=LOCAL_OUTPUTS_PARAMETER)
        except EndpointConnectionError:
            refused += 1
            return Pending(f"{refused} knocks refused")
        except ClientError as error:
            pytest.fail(f"the port answered before the stack was deployed: {error}")
        return Pending("the stack answers; the ready line is still to come")

    poll(
        ready,
        what="`local up` is ready",
        timeout=READY_SECONDS,
        interval=0.05,
        fail_if=local_up.exited,
    )
    return refused


def test_a_busy_port_fails_at_once_and_names_the_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        started = time.monotonic()
        completed = subprocess.run(
            [sys.executable, "-m", "stepburst.cli", "local", "up", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=BUSY_PORT_SECONDS,
            check=False,
            cwd=ROOT,
        )
        elapsed = time.monotonic() - started
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert f"port {port}" in completed.stderr
    assert "in use" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert elapsed < BUSY_PORT_SECONDS


def test_the_port_opens_once_the_stack_is_deployed_and_sigterm_stops_it(
    local_up: LocalUp,
) -> None:
    local_up.wait_for(DEPLOYING, READY_SECONDS)
    # While it deploys nothing answers, rather than an empty AWS.
    assert refused_until_deployed(local_up) > 0, local_up.output
    printed = "".join(local_up.out)
    endpoint = f"http://127.0.0.1:{local_up.port}"
    assert f"on {endpoint}" in printed
    bucket = re.search(r"InputBucketName\s+(\S+)", printed)
    assert bucket, printed
    buckets = client("s3", endpoint).list_buckets()["Buckets"]
    assert bucket.group(1) in [b["Name"] for b in buckets]

    assert local_up.signal_and_wait(signal.SIGTERM) == 0, local_up.output
    assert "stopping" in "".join(local_up.out)
    assert "Traceback" not in local_up.output
    assert refuses_connections(local_up.port)


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)]
)
def test_a_signal_while_deploying_stops_it(
    local_up: LocalUp, signum: signal.Signals, code: int
) -> None:
    local_up.wait_for(DEPLOYING, READY_SECONDS)
    assert local_up.signal_and_wait(signum) == code, local_up.output
    assert READY not in "".join(local_up.out)
    assert len(local_up.err) == 1, local_up.output
    assert local_up.err[0].startswith("stepburst: local up: stopped"), local_up.output


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        (
            "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n"
            "    Properties: {QueueName: !Ref Missing}\n",
            "Missing",
        ),
        ("Resources: [\n", "while parsing"),
    ],
)
def test_a_stack_that_does_not_deploy_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], template: str, reason: str
) -> None:
    (tmp_path / "template.yaml").write_text(template, encoding="utf-8")
    port = socket.socket()
    with port:
        port.bind(("127.0.0.1", 0))
        free = port.getsockname()[1]
    assert serve(tmp_path, port=free, out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("stepburst: local up: the stack did not deploy: "), err
    assert reason in err
    # Nothing is left listening.
    assert refuses_connections(free)
