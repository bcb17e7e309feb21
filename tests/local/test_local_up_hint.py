"""What `stepburst local up` tells a user to type works with the AWS CLI the project installs."""

from __future__ import annotations

import os
import shlex
import subprocess
from types import SimpleNamespace
from typing import Any

import pytest

from stepburst_local.server import describe

pytestmark = pytest.mark.engine


def test_the_hint_exports_an_endpoint_the_installed_cli_uses() -> None:
    engine: Any = SimpleNamespace(
        outputs={"InputBucketName": "in", "StateMachineArn": "arn:aws:states:x"},
        region="us-east-1",
        account_id="123456789012",
    )
    text = describe(engine, "http://127.0.0.1:9")
    (export,) = [line.strip() for line in text.splitlines() if "export " in line]
    environment = dict(word.split("=", 1) for word in shlex.split(export)[1:])
    assert environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    (copy,) = [line.strip() for line in text.splitlines() if " s3 cp " in line]
    cli = shlex.split(copy)[0]

    # Nothing listens on port 9: the CLI names the endpoint it tried, so it read the variable.
    completed = subprocess.run(
        [cli, "s3", "ls", "--cli-connect-timeout", "2", "--cli-read-timeout", "2"],
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            **environment,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode != 0
    assert "http://127.0.0.1:9" in completed.stderr
