"""The template keeps its promises: least privilege, locked-down storage, consistent wiring."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepburst.stack import REQUIRED_OUTPUTS

pytestmark = pytest.mark.template

REPO = Path(__file__).resolve().parents[2]

# Actions AWS authorises only against Resource "*".
RESOURCELESS_ACTIONS = {
    "batch:DescribeJobs",
    "scheduler:ListSchedules",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}

OUTPUTS_THE_TOOLS_READ = {
    "InputBucketName",
    "OutputBucketName",
    "WorkBucketName",
    "LedgerTableName",
    "StateMachineArn",
    "ClusterArn",
    "WorkerRepositoryUri",
    "WorkerJobQueueArn",
    "TriggerDeadLetterQueueUrl",
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(node: Any, owner: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy statement in the template, with the resource that holds it."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Statement" and isinstance(value, list):
                for statement in value:
                    yield owner, statement
            else:
                yield from statements(value, owner)
    elif isinstance(node, list):
        for value in node:
            yield from statements(value, owner)


def all_statements(template: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        for _, statement in statements(resource.get("Properties", {})):
            yield logical_id, resource["Type"], statement


def by_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def test_no_allow_statement_grants_wildcard_actions(template: dict[str, Any]) -> None:
    offenders = [
        (logical_id, action)
        for logical_id, _, statement in all_statements(template)
        if statement.get("Effect") == "Allow"
        for action in as_list(statement.get("Action", []))
        if action == "*" or action.endswith(":*")
    ]

    assert offenders == []


def test_resource_wildcards_only_where_aws_allows_nothing_narrower(
    template: dict[str, Any],
) -> None:
    offenders = [
        (logical_id, sorted(set(as_list(statement["Action"])) - RESOURCELESS_ACTIONS))
        for logical_id, resource_type, statement in all_statements(template)
        # In a key policy "*" means the key itself.
        if resource_type != "AWS::KMS::Key"
        and statement.get("Effect") == "Allow"
        and "*" in as_list(statement.get("Resource"))
        and not set(as_list(statement["Action"])) <= RESOURCELESS_ACTIONS
    ]

    assert offenders == []


def test_pass_role_is_limited_to_the_roles_each_service_needs(template: dict[str, Any]) -> None:
    """The coordinator passes only the worker roles; the schedule sync only the scheduler's."""
    allowed = {
        "CoordinatorStateMachine": {"WorkerExecutionRole", "WorkerTaskRole"},
        "SyncSchedulesFunction": {"SchedulerRole"},
    }
    passes = [
        (owner, statement)
        for owner, _, statement in all_statements(template)
        if "iam:PassRole" in as_list(statement.get("Action", []))
    ]

    assert {owner for owner, _ in passes} == set(allowed)
    for owner, statement in passes:
        assert sorted(json.dumps(r) for r in as_list(statement["Resource"])) == sorted(
            json.dumps({"Fn::GetAtt": [role, "Arn"]}) for role in allowed[owner]
        ), owner


def test_buckets_are_private_encrypted_and_tls_only(template: dict[str, Any]) -> None:
    buckets = by_type(template, "AWS::S3::Bucket")
    policies = {
        policy["Properties"]["Bucket"]["Ref"]: policy["Properties"]["PolicyDocument"]
        for policy in by_type(template, "AWS::S3::BucketPolicy").values()
    }
    assert set(buckets) == {"InputBucket", "OutputBucket", "WorkBucket"}

    for name, bucket in buckets.items():
        properties = bucket["Properties"]
        assert all(properties["PublicAccessBlockConfiguration"].values()), name
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"], name
        assert properties["OwnershipControls"]["Rules"] == [
            {"ObjectOwnership": "BucketOwnerEnforced"}
        ], name
        rules = properties["LifecycleConfiguration"]["Rules"]
        assert any("AbortIncompleteMultipartUpload" in rule for rule in rules), name
        assert {
            "Effect": "Deny",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }.items() <= policies[name]["Statement"][0].items(), name

    input_bucket = buckets["InputBucket"]["Properties"]
    assert input_bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert input_bucket["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }


def test_containers_get_the_same_configuration_as_the_functions(
    template: dict[str, Any],
) -> None:
    function_variables = set(template["Globals"]["Function"]["Environment"]["Variables"])
    task = template["Resources"]["WorkerTaskDefinition"]["Properties"]
    job = template["Resources"]["WorkerJobDefinition"]["Properties"]
    container = task["ContainerDefinitions"][0]

    for environment in (container["Environment"], job["ContainerProperties"]["Environment"]):
        names = {variable["Name"]: variable["Value"] for variable in environment}
        # The worker's architecture is a planning input only the functions need.
        expected = function_variables - {"STEPBURST_WORKER_ARCHITECTURE"}
        assert expected <= set(names)
        assert names["STEPBURST_JOBS_DIR"] == "/app/jobs"


def test_the_state_machine_overrides_the_container_the_task_defines(
    template: dict[str, Any],
) -> None:
    substitutions = template["Resources"]["CoordinatorStateMachine"]["Properties"][
        "DefinitionSubstitutions"
    ]
    task = template["Resources"]["WorkerTaskDefinition"]["Properties"]

    assert [c["Name"] for c in task["ContainerDefinitions"]] == [
        substitutions["WorkerContainerName"]
    ]


def test_outputs_name_everything_the_cli_and_local_engine_read(
    template: dict[str, Any],
) -> None:
    assert set(template["Outputs"]) >= OUTPUTS_THE_TOOLS_READ | set(REQUIRED_OUTPUTS)


def test_the_cli_reads_the_ledger_retention_the_stack_was_deployed_with(
    template: dict[str, Any],
) -> None:
    assert template["Outputs"]["LedgerRetentionDays"]["Value"] == {"Ref": "LedgerRetentionDays"}
