"""Schedules follow the job files: the custom resource creates, updates and deletes them."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from stepburst import components

from .conftest import JOBS_DIR, Cloud
from .handlers import invoke

pytestmark = pytest.mark.functional

GROUP = "stepburst"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:stepburst-coordinator"
ROLE = "arn:aws:iam::123456789012:role/stepburst-scheduler"


@pytest.fixture
def responses() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for CloudFormation's pre-signed response URL."""
    received: list[dict[str, Any]] = []

    class Receive(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/response", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def jobs(cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "jobs"
    shutil.copytree(JOBS_DIR, directory, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("STEPBURST_JOBS_DIR", str(directory))
    components.reset()
    boto3.client("scheduler").create_schedule_group(Name=GROUP)
    return directory


def request(kind: str, url: str) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/stepburst/1",
        "RequestId": f"{kind}-1",
        "LogicalResourceId": "JobSchedules",
        "ResourceType": "Custom::JobSchedules",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:sync",
            "ScheduleGroup": GROUP,
            "StateMachineArn": MACHINE,
            "SchedulerRoleArn": ROLE,
        },
    }


def schedules() -> dict[str, dict[str, Any]]:
    scheduler = boto3.client("scheduler")
    names = [s["Name"] for s in scheduler.list_schedules(GroupName=GROUP)["Schedules"]]
    return {name: scheduler.get_schedule(Name=name, GroupName=GROUP) for name in names}


def test_schedules_appear_change_and_disappear_with_job_files(
    jobs: Path, responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = responses
    invoke("sync_schedules", request("Create", url))
    assert received[-1]["Status"] == "SUCCESS"
    (schedule,) = schedules().values()
    assert schedule["Name"] == "job-ztf-alerts-daily"
    assert schedule["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "America/Los_Angeles"
    target_input = json.loads(schedule["Target"]["Input"])
    assert target_input["source"] == "stepburst.schedule"
    assert target_input["scheduled_time"] == "<aws.scheduler.scheduled-time>"

    spec = jobs / "ztf-alerts-daily.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace("America/Los_Angeles", "Europe/Paris"), "utf-8"
    )
    invoke("sync_schedules", request("Update", url))
    assert received[-1]["Data"]["Updated"] == "job-ztf-alerts-daily"
    assert schedules()["job-ztf-alerts-daily"]["ScheduleExpressionTimezone"] == "Europe/Paris"

    spec.unlink()
    invoke("sync_schedules", request("Update", url))
    assert received[-1]["Data"]["Deleted"] == "job-ztf-alerts-daily"
    assert schedules() == {}


def test_an_invalid_job_file_fails_the_deploy_naming_file_and_field(
    jobs: Path, responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = responses
    spec = jobs / "ztf-alerts-daily.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace("America/Los_Angeles", "Mars/Olympus"), "utf-8"
    )
    invoke("sync_schedules", request("Update", url))
    assert received[-1]["Status"] == "FAILED"
    assert "ztf-alerts-daily.yaml" in received[-1]["Reason"]
    assert "timezone" in received[-1]["Reason"]


def test_deleting_the_stack_removes_every_schedule(
    jobs: Path, responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = responses
    invoke("sync_schedules", request("Create", url))
    invoke("sync_schedules", request("Delete", url))
    assert received[-1]["Status"] == "SUCCESS"
    assert schedules() == {}


def test_a_job_fargate_cannot_place_fails_the_deploy(
    jobs: Path, responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = responses
    components.reset()
    spec = jobs / "dam-periods.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace(
            "compute:\n  platform: auto",
            "compute:\n  platform: auto\n  cpu: 256\n  memory_mb: 16384",
        ),
        encoding="utf-8",
    )
    invoke("sync_schedules", request("Update", url))
    assert received[-1]["Status"] == "FAILED"
    assert "dam-periods.yaml: compute.memory_mb" in received[-1]["Reason"]
