"""The template keeps its promises: least privilege, locked-down storage, consistent wiring."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepburst.jobs import Job
from stepburst.stack import REQUIRED_OUTPUTS

pytestmark = pytest.mark.template

REPO = Path(__file__).resolve().parents[2]

# Actions AWS authorises only against Resource "*".
RESOURCELESS_ACTIONS = {
    "batch:DescribeJobs",
    "batch:DescribeJobDefinitions",
    "batch:DescribeComputeEnvironments",
    "batch:DescribeJobQueues",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "ecs:RegisterTaskDefinition",
    "ecs:DeregisterTaskDefinition",
    "ecs:DescribeTaskDefinition",
    "ecs:ListTaskDefinitions",
    "ecs:ListTaskDefinitionFamilies",
    "iam:ListRoles",
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


def iter_states(machine: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every state of an ASL definition, inside Map and Parallel states too."""
    for state in machine.get("States", {}).values():
        yield state
        for inner in (
            state.get("ItemProcessor"),
            state.get("Iterator"),
            *state.get("Branches", []),
        ):
            if inner:
                yield from iter_states(inner)


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
    """The coordinator passes only the worker roles and the jobs' own (stepburst.job_compute);
    the compute sync the same to the definitions it registers; the schedule sync only the
    scheduler's."""
    job_roles = {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/stepburst/${AWS::StackName}/*"
    }

    def roles(*logical_ids: str) -> list[Any]:
        return [{"Fn::GetAtt": [role, "Arn"]} for role in logical_ids]

    allowed = {
        "CoordinatorStateMachine": [*roles("WorkerExecutionRole", "WorkerTaskRole"), job_roles],
        # ... and the Batch instance role to the jobs' own compute environments.
        "SyncJobComputeFunction": [
            *roles("WorkerExecutionRole", "WorkerTaskRole", "BatchInstanceRole"),
            job_roles,
        ],
        "SyncSchedulesFunction": roles("SchedulerRole"),
    }
    passes = [
        (owner, statement)
        for owner, _, statement in all_statements(template)
        if "iam:PassRole" in as_list(statement.get("Action", []))
    ]

    assert {owner for owner, _ in passes} == set(allowed)
    for owner, expected in allowed.items():
        passed = [
            json.dumps(r)
            for passer, statement in passes
            if passer == owner
            for r in as_list(statement["Resource"])
        ]
        assert sorted(passed) == sorted(json.dumps(role) for role in expected), owner


def test_buckets_are_private_encrypted_and_tls_only(template: dict[str, Any]) -> None:
    buckets = by_type(template, "AWS::S3::Bucket")
    policies = {
        policy["Properties"]["Bucket"]["Ref"]: policy["Properties"]["PolicyDocument"]
        for policy in by_type(template, "AWS::S3::BucketPolicy").values()
    }
    assert set(buckets) == {"InputBucket", "OutputBucket", "WorkBucket", "AccessLogBucket"}

    for name, bucket in buckets.items():
        properties = bucket["Properties"]
        assert all(properties["PublicAccessBlockConfiguration"].values()), name
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"], name
        assert properties["OwnershipControls"]["Rules"] == [
            {"ObjectOwnership": "BucketOwnerEnforced"}
        ], name
        rules = properties["LifecycleConfiguration"]["Rules"]
        assert any("AbortIncompleteMultipartUpload" in rule for rule in rules), name
        assert any(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }.items()
            <= statement.items()
            for statement in policies[name]["Statement"]
        ), name

    input_bucket = buckets["InputBucket"]["Properties"]
    assert input_bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert input_bucket["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }


def test_output_bucket_keeps_the_results_a_rerun_replaces_for_a_while(
    template: dict[str, Any],
) -> None:
    output_bucket = template["Resources"]["OutputBucket"]["Properties"]

    assert output_bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert any(
        rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays", 0) > 0
        for rule in output_bucket["LifecycleConfiguration"]["Rules"]
    )


def test_every_data_bucket_logs_access_to_the_retained_log_bucket(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    data_buckets = ("InputBucket", "OutputBucket", "WorkBucket")
    logging = {name: resources[name]["Properties"]["LoggingConfiguration"] for name in data_buckets}
    log_bucket = resources["AccessLogBucket"]
    policy = next(
        policy["Properties"]["PolicyDocument"]
        for policy in by_type(template, "AWS::S3::BucketPolicy").values()
        if policy["Properties"]["Bucket"] == {"Ref": "AccessLogBucket"}
    )
    delivery = [
        statement
        for statement in policy["Statement"]
        if statement["Effect"] == "Allow"
        and statement["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    ]

    for name, config in logging.items():
        assert config["DestinationBucketName"] == {"Ref": "AccessLogBucket"}, name
    prefixes = [config["LogFilePrefix"] for config in logging.values()]
    assert len(set(prefixes)) == len(prefixes), "each bucket logs under its own prefix"
    # Retained buckets keep logging here after the stack is gone.
    assert log_bucket["DeletionPolicy"] == "Retain"
    assert log_bucket["UpdateReplacePolicy"] == "Retain"
    assert any(
        "ExpirationInDays" in rule
        for rule in log_bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    )
    assert len(delivery) == 1
    assert as_list(delivery[0]["Action"]) == ["s3:PutObject"]
    condition = delivery[0]["Condition"]
    assert sorted(json.dumps(arn) for arn in condition["ArnLike"]["aws:SourceArn"]) == sorted(
        json.dumps({"Fn::GetAtt": [name, "Arn"]}) for name in data_buckets
    )
    assert condition["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_the_worker_runs_the_immutable_image_each_deploy_names(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    parameter = template["Parameters"]["WorkerImageTag"]
    assertions = [
        assertion
        for rule in template.get("Rules", {}).values()
        if "RuleCondition" not in rule
        for assertion in rule["Assertions"]
    ]
    images = [
        resources["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"][0]["Image"],
        resources["WorkerJobDefinition"]["Properties"]["ContainerProperties"]["Image"],
    ]

    assert resources["WorkerRepository"]["Properties"]["ImageTagMutability"] == "IMMUTABLE"
    assert "Default" not in parameter, "a deploy must name its image tag"
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "WorkerImageTag"}, "latest"]}]} in [
        assertion["Assert"] for assertion in assertions
    ]
    assert images == [{"Fn::Sub": "${WorkerRepository.RepositoryUri}:${WorkerImageTag}"}] * 2


def test_item_function_concurrency_is_reserved_by_a_parameter(template: dict[str, Any]) -> None:
    function = template["Resources"]["ProcessItemsFunction"]["Properties"]
    parameter = template["Parameters"]["ProcessItemsReservedConcurrency"]
    default_job_concurrency = Job.model_fields["max_concurrency"].default

    assert function["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "ReserveItemConcurrency",
            {"Ref": "ProcessItemsReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    # 0 opts out: Lambda's own 0 would throttle every unit.
    assert template["Conditions"]["ReserveItemConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ProcessItemsReservedConcurrency"}, 0]}]
    }
    assert parameter["MinValue"] == 0
    assert int(parameter["Default"]) >= default_job_concurrency


def test_the_coordinator_manages_only_this_stacks_batch_jobs(template: dict[str, Any]) -> None:
    machine = template["Resources"]["CoordinatorStateMachine"]["Properties"]
    definition = json.loads((REPO / machine["DefinitionUri"]).read_text())
    submits = [
        state
        for state in iter_states(definition)
        if state.get("Resource", "").startswith("arn:aws:states:::batch:submitJob")
    ]
    batch_statements = {
        action: statement
        for _, statement in statements(machine["Policies"])
        for action in as_list(statement.get("Action", []))
        if action.startswith("batch:") and action != "batch:DescribeJobs"
    }
    stack_tag = {"stepburst:stack": {"Ref": "AWS::StackName"}}

    assert machine["DefinitionSubstitutions"]["StackName"] == {"Ref": "AWS::StackName"}
    assert submits
    for state in submits:
        assert state["Parameters"]["Tags"]["stepburst:stack"] == "${StackName}"
    assert set(batch_statements) == {"batch:SubmitJob", "batch:TagResource", "batch:TerminateJob"}
    for action in ("batch:SubmitJob", "batch:TagResource"):
        condition = batch_statements[action]["Condition"]["StringEquals"]
        assert condition == {f"aws:RequestTag/{key}": value for key, value in stack_tag.items()}
    terminate = batch_statements["batch:TerminateJob"]["Condition"]["StringEquals"]
    assert terminate == {f"aws:ResourceTag/{key}": value for key, value in stack_tag.items()}


def test_containers_get_the_same_configuration_as_the_functions(
    template: dict[str, Any],
) -> None:
    function_variables = set(template["Globals"]["Function"]["Environment"]["Variables"])
    task = template["Resources"]["WorkerTaskDefinition"]["Properties"]
    job = template["Resources"]["WorkerJobDefinition"]["Properties"]
    container = task["ContainerDefinitions"][0]

    for environment in (container["Environment"], job["ContainerProperties"]["Environment"]):
        names = {variable["Name"]: variable["Value"] for variable in environment}
        # The worker's architecture and the image's jobs digest are planning inputs only the
        # functions need (the image carries its own digest).
        expected = function_variables - {
            "STEPBURST_WORKER_ARCHITECTURE",
            "STEPBURST_WORKER_JOBS_DIGEST",
        }
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
