"""``stepburst local up``: the stack served on 127.0.0.1 for boto3 and the AWS CLI."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from tests.polling import Pending, poll

from stepburst_local.schedules import EngineClock
from stepburst_local.server import serve

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_local_up_serves_the_stack_until_stopped(tmp_path: Path) -> None:
    out, ready, stop = io.StringIO(), threading.Event(), threading.Event()
    # A clock that is hours from any schedule's time: nothing fires during the test.
    clock = EngineClock(start=datetime(2026, 1, 1, tzinfo=UTC), speed=60)
    result: list[int] = []
    server = threading.Thread(
        target=lambda: result.append(
            serve(ROOT, port=0, out=out, ready=ready, stop=stop, clock=clock)
        ),
        daemon=True,
    )
    server.start()
    try:
        assert ready.wait(60), out.getvalue()
        printed = out.getvalue()
        endpoint = re.search(r"on (http://127\.0\.0\.1:\d+)", printed)
        bucket = re.search(r"InputBucketName\s+(\S+)", printed)
        table = re.search(r"LedgerTableName\s+(\S+)", printed)
        machine = re.search(r"StateMachineArn\s+(\S+)", printed)
        assert endpoint, printed
        assert bucket, printed
        assert table, printed
        assert machine, printed
        assert "Schedules fire on the engine's clock, now 2026-01-01T00:0" in printed
        assert "running 60 times faster" in printed
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
        )

        def client(service: str):  # type: ignore[no-untyped-def]
            return session.client(service, endpoint_url=endpoint.group(1))

        names = [b["Name"] for b in client("s3").list_buckets()["Buckets"]]
        assert bucket.group(1) in names
        assert table.group(1) in client("dynamodb").list_tables()["TableNames"]
        arns = [
            m["stateMachineArn"]
            for m in client("stepfunctions").list_state_machines()["stateMachines"]
        ]
        assert machine.group(1) in arns

        # An upload over HTTP under a job's prefix starts a run, as on AWS.
        client("s3").put_object(
            Bucket=bucket.group(1),
            Key="incoming/yelp/hello.jsonl",
            Body=b'{"business_id": "b1", "stars": 4.5, "review_count": 10}\n',
        )
        sfn = client("stepfunctions")

        def first_execution_ended() -> dict[str, Any] | Pending:
            executions = sfn.list_executions(stateMachineArn=machine.group(1))["executions"]
            if executions and executions[0]["status"] != "RUNNING":
                return dict(executions[0])
            return Pending(executions)

        # Any end stops the wait: a failed execution fails the assertion at once.
        execution = poll(
            first_execution_ended, what="the upload's execution ends", timeout=30, interval=0.1
        )
        assert execution["status"] == "SUCCEEDED", execution

        # The AWS CLI the project installs (requirements-dev.txt), next to this interpreter.
        aws = Path(sys.executable).with_name("aws")
        assert aws.is_file(), f"{aws} is missing: the dev requirements install awscli"
        listed = subprocess.run(
            [str(aws), "--endpoint-url", endpoint.group(1), "s3", "ls"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={
                **os.environ,
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        )
        assert listed.returncode == 0, listed.stderr
        assert bucket.group(1) in listed.stdout
    finally:
        stop.set()
        server.join(30)
    assert result == [0]
    assert "stopping" in out.getvalue()
