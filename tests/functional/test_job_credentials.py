"""A job's command gets the job role's credentials, served like a container's, never the
worker's."""

from __future__ import annotations

import json
import os
import urllib.request

import boto3
import pytest

from stepburst.job_credentials import job_environment

from .conftest import Cloud

pytestmark = pytest.mark.functional

ROLE = "arn:aws:iam::123456789012:role/stepburst/stepburst/stepburst-job-triage"


def test_the_command_sees_the_job_role_and_none_of_the_workers_credentials(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = {
        **os.environ,
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/worker",
        "AWS_ACCESS_KEY_ID": "worker-key",
        "KEEP_ME": "yes",
    }
    with job_environment(worker, ROLE, "triage-0") as served:
        assert "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" not in served
        assert "AWS_ACCESS_KEY_ID" not in served
        assert served["KEEP_ME"] == "yes"
        uri = served["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        assert uri.startswith("http://127.0.0.1:")

        refused = urllib.request.Request(uri, headers={"Authorization": "guess"})
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(refused, timeout=5)
        assert denied.value.code == 401

        # What an AWS SDK in the command resolves from that environment.
        for name in list(os.environ):
            if name.startswith("AWS_") and name not in ("AWS_DEFAULT_REGION",):
                monkeypatch.delenv(name)
        for name in ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN"):
            monkeypatch.setenv(name, served[name])
        credentials = boto3.Session().get_credentials()
        assert credentials is not None
        frozen = credentials.get_frozen_credentials()
        request = urllib.request.Request(
            uri, headers={"Authorization": served["AWS_CONTAINER_AUTHORIZATION_TOKEN"]}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            document = json.loads(answer.read())
        assert frozen.access_key == document["AccessKeyId"]
        assert frozen.access_key != "worker-key"
        assert document["Token"]


def test_without_a_job_role_the_environment_is_unchanged(cloud: Cloud) -> None:
    with job_environment({"A": "1"}, None, "x") as served:
        assert served == {"A": "1"}
