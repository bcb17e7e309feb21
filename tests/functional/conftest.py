"""An in-memory AWS (moto) with the stack's storage and ledger, and the env the code reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stepburst import aws, runtime

REPO = Path(__file__).resolve().parents[2]
JOBS_DIR = REPO / "jobs"
EVENTS_DIR = REPO / "events"


@dataclass(frozen=True)
class Cloud:
    input_bucket: str
    output_bucket: str
    work_bucket: str
    table: str

    @property
    def s3(self) -> Any:
        return aws.client("s3")

    @property
    def ddb(self) -> Any:
        return aws.client("dynamodb")


def create_ledger_table(name: str) -> None:
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": attr, "AttributeType": "S"}
            for attr in ("pk", "sk", "job", "started_at")
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "ByJob",
                "KeySchema": [
                    {"AttributeName": "job", "KeyType": "HASH"},
                    {"AttributeName": "started_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


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


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Stepburst",
        "STEPBURST_LEDGER_TABLE": "ledger",
        "STEPBURST_INPUT_BUCKET": "stepburst-input-example",
        "STEPBURST_OUTPUT_BUCKET": "stepburst-output-example",
        "STEPBURST_WORK_BUCKET": "stepburst-work-example",
        "STEPBURST_JOBS_DIR": str(JOBS_DIR),
        "STEPBURST_EVENT_BUS_NAME": "default",
        "STEPBURST_RETENTION_DAYS": "90",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.syspath_prepend(str(JOBS_DIR))
    with mock_aws():
        aws.reset_clients()
        runtime.reset()
        s3 = boto3.client("s3")
        cloud = Cloud(
            input_bucket="stepburst-input-example",
            output_bucket="stepburst-output-example",
            work_bucket="stepburst-work-example",
            table="ledger",
        )
        for bucket in (cloud.input_bucket, cloud.output_bucket, cloud.work_bucket):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(
            Bucket=cloud.input_bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        create_ledger_table(cloud.table)
        yield cloud
        aws.reset_clients()
        runtime.reset()
