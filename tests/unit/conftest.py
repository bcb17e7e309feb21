"""Fixtures shared by the unit and functional tests of the data path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stepburst import aws

JOBS_DIR = Path(__file__).resolve().parents[2] / "jobs"


@pytest.fixture(scope="module")
def s3(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One in-memory S3 per module, with the module's BUCKET created (starting moto per test
    would dominate the run time); the example jobs are importable."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.syspath_prepend(str(JOBS_DIR))
        aws.reset_clients()
        try:
            with mock_aws():
                client = boto3.client("s3")
                client.create_bucket(Bucket=request.module.BUCKET)
                yield client
        finally:
            aws.reset_clients()
