"""The engine deploys the project's template.yaml as written, into the in-memory AWS."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepburst_local import LocalEngine
from stepburst_local.compute import ContainerImage, docker_command, parse_entrypoint
from stepburst_local.moto_internals import s3_backends

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_JOBS = ROOT / "tests" / "fixtures" / "jobs"

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(
        ROOT, jobs_dir=FIXTURE_JOBS, function_timeouts={"PlanFunction": 12}, quiet=True
    ) as running:
        yield running


def test_outputs_name_the_stack_resources(engine: LocalEngine) -> None:
    outputs = engine.outputs
    for name in ("InputBucketName", "OutputBucketName", "WorkBucketName", "LedgerTableName"):
        assert outputs[name]
    assert outputs["StateMachineArn"].endswith(":stateMachine:stepburst-local-coordinator")
    assert outputs["ClusterArn"].startswith("arn:aws:ecs:us-east-1:123456789012:cluster/")
    assert engine.endpoint_url.startswith("http://127.0.0.1:")


def test_buckets_table_and_rule_are_created_as_the_template_says(engine: LocalEngine) -> None:
    s3, ddb, events = engine.client("s3"), engine.client("dynamodb"), engine.client("events")
    bucket = engine.outputs["InputBucketName"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    # (moto's GetBucketNotificationConfiguration omits EventBridge; its model has it.)
    stored = s3_backends[engine.account_id]["aws"].get_bucket(bucket)
    assert stored.notification_configuration.event_bridge is not None

    table = ddb.describe_table(TableName=engine.outputs["LedgerTableName"])["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["ByJob"]
    ttl = ddb.describe_time_to_live(TableName=engine.outputs["LedgerTableName"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"

    (name,) = events.list_rule_names_by_target(TargetArn=engine.state_machine_arn)["RuleNames"]
    rule = events.describe_rule(Name=name)
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail"]["bucket"]["name"] == [bucket]
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == engine.state_machine_arn


def test_state_machine_is_the_deployed_file_with_its_substitutions(engine: LocalEngine) -> None:
    stored = engine.client("stepfunctions").describe_state_machine(
        stateMachineArn=engine.state_machine_arn
    )["definition"]
    text = (ROOT / "statemachines" / "coordinator.asl.json").read_text()

    assert "${" not in stored
    assert json.loads(stored).keys() == json.loads(text).keys()
    plan = json.loads(stored)["States"]["Plan"]["Parameters"]["FunctionName"]
    assert plan == engine.lambda_runtime.spec("PlanFunction").arn  # type: ignore[union-attr]


def test_workers_are_registered_with_the_template_environment(engine: LocalEngine) -> None:
    ecs, batch = engine.client("ecs"), engine.client("batch")
    definition = ecs.describe_task_definition(
        taskDefinition=engine.outputs["WorkerTaskDefinitionArn"]
    )["taskDefinition"]
    environment = {
        e["name"]: e["value"] for e in definition["containerDefinitions"][0]["environment"]
    }
    assert environment["STEPBURST_LEDGER_TABLE"] == engine.outputs["LedgerTableName"]
    assert definition["networkMode"] == "awsvpc"
    (queue,) = batch.describe_job_queues(jobQueues=[engine.outputs["WorkerJobQueueArn"]])[
        "jobQueues"
    ]
    assert queue["state"] == "ENABLED"
    (job_definition,) = batch.describe_job_definitions(
        jobDefinitions=[engine.outputs["WorkerJobDefinitionArn"]]
    )["jobDefinitions"]
    assert job_definition["containerProperties"]["resourceRequirements"]


def test_functions_get_their_template_environment_with_the_jobs_layer_mapped(
    engine: LocalEngine,
) -> None:
    plan = engine.lambda_runtime.spec("PlanFunction")
    assert plan is not None
    assert plan.environment["STEPBURST_JOBS_DIR"] == str(FIXTURE_JOBS)  # /opt/python locally
    assert plan.environment["STEPBURST_INPUT_BUCKET"] == engine.outputs["InputBucketName"]
    assert plan.environment["POWERTOOLS_SERVICE_NAME"] == "stepburst"  # from Globals
    assert plan.timeout_seconds == 12  # function_timeouts overrides the template's 300
    process = engine.lambda_runtime.spec("ProcessItemsFunction")
    assert process is not None
    assert process.timeout_seconds == 900
    assert process.memory_mb == 1769
    assert str(FIXTURE_JOBS) in sys.path  # the jobs layer is importable, as /opt/python


def test_function_roles_hold_the_policies_sam_generates(engine: LocalEngine) -> None:
    iam, lambda_ = engine.client("iam"), engine.client("lambda")
    assert engine.stack is not None
    plan = engine.lambda_runtime.spec("PlanFunction")
    assert plan is not None
    role_arn = lambda_.get_function(FunctionName=plan.name)["Configuration"]["Role"]
    role = role_arn.rsplit("/", 1)[-1]
    assert role == engine.stack.resources["PlanFunctionRole"].name

    statements = [
        statement
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
        for statement in iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"][
            "Statement"
        ]
    ]
    table = f"arn:aws:dynamodb:us-east-1:123456789012:table/{engine.outputs['LedgerTableName']}"
    # DynamoDBWritePolicy on the ledger, as SAM's policy template defines it.
    assert {
        "Effect": "Allow",
        "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"],
        "Resource": [table, f"{table}/index/*"],
    } in statements
    # S3ReadPolicy on the input bucket.
    bucket = f"arn:aws:s3:::{engine.outputs['InputBucketName']}"
    (read,) = [s for s in statements if s["Resource"] == [bucket, f"{bucket}/*"]]
    assert "s3:GetObject" in read["Action"]
    # The template's own statements, with their intrinsics resolved.
    (manifests,) = [s for s in statements if s.get("Sid") == "WriteManifests"]
    assert manifests["Resource"] == f"arn:aws:s3:::{engine.outputs['WorkBucketName']}/*"
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert {p["PolicyName"] for p in attached} == {
        "AWSLambdaBasicExecutionRole",
        "AWSXrayWriteOnlyAccess",  # Tracing: Active
    }


def test_state_machine_role_may_invoke_its_functions(engine: LocalEngine) -> None:
    iam, sfn = engine.client("iam"), engine.client("stepfunctions")
    role_arn = sfn.describe_state_machine(stateMachineArn=engine.state_machine_arn)["roleArn"]
    role = role_arn.rsplit("/", 1)[-1]
    invocable = [
        statement["Resource"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
        for statement in iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"][
            "Statement"
        ]
        if "lambda:InvokeFunction" in statement["Action"]
    ]
    plan = engine.lambda_runtime.spec("PlanFunction")
    assert plan is not None
    # LambdaInvokePolicy: the function and its versions and aliases (``<arn>*``).
    assert f"{plan.arn}*" in invocable


def test_functions_layers_and_permissions_are_created_in_lambda(engine: LocalEngine) -> None:
    lambda_ = engine.client("lambda")
    listed = {f["FunctionName"]: f for f in lambda_.list_functions()["Functions"]}
    assert {spec.name for spec in engine.lambda_runtime.functions} == set(listed)
    plan = engine.lambda_runtime.spec("PlanFunction")
    assert plan is not None
    configuration = listed[plan.name]
    assert configuration["Handler"] == "app.lambda_handler"
    assert configuration["MemorySize"] == 1769
    layers = {layer["Arn"].split(":")[6] for layer in configuration["Layers"]}
    assert layers == {"StepburstLayer", "JobsLayer"}
    reconcile = engine.lambda_runtime.spec("ReconcileFunction")
    assert reconcile is not None
    policy = json.loads(lambda_.get_policy(FunctionName=reconcile.name)["Policy"])
    assert [s["Principal"] for s in policy["Statement"]] == [{"Service": "events.amazonaws.com"}]


def test_parse_entrypoint_reads_the_exec_form(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text('FROM python\nCMD ["--help"]\nENTRYPOINT ["python", "-m", "worker"]\n')

    assert parse_entrypoint(dockerfile) == ["python", "-m", "worker"]
    assert parse_entrypoint(ROOT / "containers" / "worker" / "Dockerfile")[:3] == [
        "python",
        "-m",
        "stepburst.worker",
    ]


def test_docker_command_runs_the_image_on_the_host_network() -> None:
    image = ContainerImage(
        entrypoint=["python", "-m", "stepburst.worker"],
        image="stepburst-worker:local",
        mounts=(("/src/jobs", "/app/jobs"),),
        docker_environment={"STEPBURST_JOBS_DIR": "/app/jobs"},
    )
    command = docker_command(
        image,
        ["python", "-m", "stepburst.worker", "run-unit", "--run", "r1"],
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
            "STEPBURST_JOBS_DIR": "/src/jobs",
            "PATH": "/x",
        },
        "stepburst-ecs-1",
    )

    assert command[:7] == [
        "docker",
        "run",
        "--rm",
        "--name",
        "stepburst-ecs-1",
        "--network",
        "host",
    ]
    assert "/src/jobs:/app/jobs:ro" in command
    assert "STEPBURST_JOBS_DIR=/app/jobs" in command
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:5000" in command
    assert not any(part.startswith("PATH=") for part in command)
    assert command[-7:] == [
        "python",
        "stepburst-worker:local",
        "-m",
        "stepburst.worker",
        "run-unit",
        "--run",
        "r1",
    ]
