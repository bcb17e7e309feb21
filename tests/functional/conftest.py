"""An in-memory AWS (moto) with the stack's storage and ledger, and the env the code reads.

The ledger's schema and the functions' environment come from template.yaml, so these tests run
against what the stack deploys, not a copy of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stepburst import aws, components
from tests.template_model import (
    bucket_versioning,
    function_environment,
    project_template,
    resources_of_type,
    table_schema,
)

REPO = Path(__file__).resolve().parents[2]
JOBS_DIR = REPO / "jobs"
EVENTS_DIR = REPO / "events"

TEST_CREDENTIALS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
# Where these tests differ from Lambda: the jobs layer is the repository's jobs/ (Lambda mounts
# it at /opt/python), and no X-Ray daemon runs beside the handlers.
LOCAL_ENVIRONMENT = {
    "STEPBURST_JOBS_DIR": str(JOBS_DIR),
    "POWERTOOLS_TRACE_DISABLED": "true",
}


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

    def refs(self) -> dict[str, str]:
        """The template's resources as the functions' environment refers to them."""
        return {
            "LedgerTable": self.table,
            "InputBucket": self.input_bucket,
            "OutputBucket": self.output_bucket,
            "WorkBucket": self.work_bucket,
            "AWS::StackName": "stepburst",
        }


def functions_environment(refs: dict[str, str]) -> dict[str, str]:
    """The environment every function gets from the template; the handlers share one process,
    so they must all get the same one."""
    template = project_template()
    environments = {
        function_id: function_environment(template, function_id, refs)
        for function_id in resources_of_type(template, "AWS::Serverless::Function")
    }
    shared = next(iter(environments.values()))
    differing = sorted(name for name, env in environments.items() if env != shared)
    assert not differing, f"functions with an environment of their own: {differing}"
    return shared


def create_buckets(cloud: Cloud) -> None:
    """The stack's buckets, versioned where the template versions them."""
    s3 = boto3.client("s3")
    template = project_template()
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    for logical_id, name in cloud.refs().items():
        if logical_id not in buckets:
            continue
        s3.create_bucket(Bucket=name)
        status = bucket_versioning(template, logical_id)
        if status is not None:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})


def create_ledger_table(name: str) -> None:
    schema = table_schema(project_template(), "LedgerTable")
    boto3.client("dynamodb").create_table(TableName=name, **schema)


@pytest.fixture(scope="module")
def s3(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One in-memory S3 per module, with the module's BUCKET created (starting moto per test
    would dominate the run time); the example jobs are importable."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION"):
            patch.delenv(name, raising=False)
        for name, value in TEST_CREDENTIALS.items():
            patch.setenv(name, value)
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
    cloud = Cloud(
        input_bucket="stepburst-input-example",
        output_bucket="stepburst-output-example",
        work_bucket="stepburst-work-example",
        table="ledger",
    )
    environment = {**functions_environment(cloud.refs()), **LOCAL_ENVIRONMENT, **TEST_CREDENTIALS}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.syspath_prepend(str(JOBS_DIR))
    with mock_aws():
        aws.reset_clients()
        components.reset()
        create_buckets(cloud)
        create_ledger_table(cloud.table)
        yield cloud
        aws.reset_clients()
        components.reset()
