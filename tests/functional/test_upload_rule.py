"""The uploads rule follows the job files: it passes exactly the keys a deployed job takes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest

from stepburst import components

from .conftest import JOBS_DIR, Cloud
from .handlers import invoke
from .test_schedules import responses

pytestmark = pytest.mark.functional

__all__ = ["responses"]

RULE = "stepburst-uploads"

NEW_JOB = """
name: star-prices
triggers:
  s3:
    - prefix: incoming/stars*/
      suffix: .jsonl
    - prefix: drop/prices/
split:
  single: {}
run:
  function: yelp_scores:add_review_score
output:
  prefix: stars/
"""


@pytest.fixture
def jobs(cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "jobs"
    shutil.copytree(JOBS_DIR, directory, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("STEPBURST_JOBS_DIR", str(directory))
    components.reset()
    # The rule as the template creates it: every upload to the bucket.
    events = boto3.client("events")
    events.put_rule(
        Name=RULE,
        Description="uploads",
        EventPattern=json.dumps(
            {"source": ["aws.s3"], "detail": {"bucket": {"name": [cloud.input_bucket]}}}
        ),
    )
    return directory


def sync(url: str, cloud: Cloud, kind: str = "Update") -> None:
    invoke(
        "sync_upload_rule",
        {
            "RequestType": kind,
            "ResponseURL": url,
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/stepburst/1",
            "RequestId": f"{kind}-1",
            "LogicalResourceId": "UploadRulePattern",
            "ResourceType": "Custom::UploadRulePattern",
            "ResourceProperties": {
                "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:sync",
                "RuleName": RULE,
                "InputBucket": cloud.input_bucket,
            },
        },
    )


def key_filters() -> list[dict[str, Any]]:
    pattern = json.loads(boto3.client("events").describe_rule(Name=RULE)["EventPattern"])
    filters: list[dict[str, Any]] = pattern["detail"]["object"]["key"]
    return filters


def deployed_triggers(jobs: Path) -> set[tuple[str, str]]:
    """The (prefix, suffix) pairs the job files declare, read here from the YAML itself."""
    import yaml

    pairs = set()
    for path in jobs.glob("*.yaml"):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        for trigger in (spec.get("triggers") or {}).get("s3") or []:
            pairs.add((trigger["prefix"], trigger.get("suffix", "")))
    return pairs


def as_pairs(filters: list[dict[str, Any]]) -> set[tuple[str, str]]:
    pairs = set()
    for entry in filters:
        if "prefix" in entry:
            pairs.add((entry["prefix"], ""))
        else:
            prefix, suffix = entry["wildcard"].replace("\\*", "\0").split("*")
            pairs.add((prefix.replace("\0", "*"), suffix.replace("\0", "*")))
    return pairs


def matches(key: str, cloud: Cloud) -> bool:
    """Whether an upload of ``key`` passes the rule: put its event, see if the rule's queue
    target receives it."""
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="uploads-seen")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = boto3.client("events")
    events.put_targets(Rule=RULE, Targets=[{"Id": "seen", "Arn": arn}])
    detail = {"bucket": {"name": cloud.input_bucket}, "object": {"key": key}}
    events.put_events(
        Entries=[{"Source": "aws.s3", "DetailType": "Object Created", "Detail": json.dumps(detail)}]
    )
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    for message in received:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return bool(received)


def test_the_rule_follows_jobs_added_and_removed(
    jobs: Path, cloud: Cloud, responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = responses
    sync(url, cloud, "Create")
    assert as_pairs(key_filters()) == deployed_triggers(jobs)
    assert matches("incoming/yelp/b.jsonl", cloud)
    assert not matches("incoming/yelp/b.csv", cloud)
    assert not matches("elsewhere/b.jsonl", cloud)

    (jobs / "star-prices.yaml").write_text(NEW_JOB, encoding="utf-8")
    sync(url, cloud)
    assert ("incoming/stars*/", ".jsonl") in as_pairs(key_filters())
    assert as_pairs(key_filters()) == deployed_triggers(jobs)
    assert matches("incoming/stars*/x.jsonl", cloud)
    # The job's `*` is its own character, not a wildcard.
    assert not matches("incoming/stars-2/x.jsonl", cloud)
    assert matches("drop/prices/anything", cloud)

    (jobs / "star-prices.yaml").unlink()
    sync(url, cloud)
    assert as_pairs(key_filters()) == deployed_triggers(jobs)
    assert not matches("drop/prices/anything", cloud)

    rule = boto3.client("events").describe_rule(Name=RULE)
    assert rule["State"] == "ENABLED"
    assert rule["Description"] == "uploads"
    # PutRule leaves the rule's targets alone.
    targets = boto3.client("events").list_targets_by_rule(Rule=RULE)["Targets"]
    assert [target["Id"] for target in targets] == ["seen"]
    assert [answer["Status"] for answer in received] == ["SUCCESS"] * 3


def test_without_upload_jobs_the_rule_passes_nothing(
    jobs: Path, cloud: Cloud, responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, _ = responses
    for path in jobs.glob("*.yaml"):
        spec = path.read_text(encoding="utf-8")
        if "s3:" in spec:
            path.unlink()
    sync(url, cloud)
    assert key_filters() == [{"exists": False}]
    assert not matches("incoming/yelp/b.jsonl", cloud)


def test_an_invalid_job_file_fails_the_deploy_and_leaves_the_rule(
    jobs: Path, cloud: Cloud, responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = responses
    before = boto3.client("events").describe_rule(Name=RULE)["EventPattern"]
    (jobs / "broken.yaml").write_text("name: broken\ncolour: blue\n", encoding="utf-8")
    sync(url, cloud)
    assert received[-1]["Status"] == "FAILED"
    assert "broken" in received[-1]["Reason"]
    assert boto3.client("events").describe_rule(Name=RULE)["EventPattern"] == before
