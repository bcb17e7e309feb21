"""Each adapter turns botocore failures into domain errors: by code, never by message text.

AWS is answered by botocore's Stubber on the real cached clients, so the requests are checked
against each service's model and nothing leaves the process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import ANY, Stubber

from stepburst import aws, storage
from stepburst.adapters import (
    batch,
    cloudformation,
    ecs,
    events,
    scheduler,
    ssm,
    stepfunctions,
)
from stepburst.adapters.dynamodb import Table
from stepburst.adapters.translation import translated
from stepburst.errors import (
    AccessDeniedError,
    AwsError,
    AwsUnavailableError,
    ConditionFailedError,
    ExecutionAlreadyExistsError,
    ExecutionNotFoundError,
    ObjectNotFoundError,
    ParameterNotFoundError,
    ResourceNotFoundError,
    SourceChangedError,
    ThrottledError,
)
from stepburst.ledger import Ledger

pytestmark = pytest.mark.unit

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:coordinator"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:coordinator:run-1"
CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/workers"
QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/workers"


@pytest.fixture(autouse=True)
def offline_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Fake credentials and a region; no shared config, no instance metadata, no endpoint."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws.reset_clients()
    yield
    aws.reset_clients()


@pytest.fixture
def stub() -> Iterator[Callable[[Any], Stubber]]:
    """Stub a service's cached client; every queued answer must have been asked for."""
    stubbers: list[Stubber] = []

    def make(service: Any) -> Stubber:
        stubber = Stubber(aws.client(service))
        stubber.activate()
        stubbers.append(stubber)
        return stubber

    yield make
    for stubber in stubbers:
        stubber.assert_no_pending_responses()
        stubber.deactivate()


# -- the shared translation ------------------------------------------------------------------


def client_error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "AnyOperation")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ThrottlingException", ThrottledError),
        ("TooManyRequestsException", ThrottledError),
        ("ProvisionedThroughputExceededException", ThrottledError),
        ("AccessDeniedException", AccessDeniedError),
        ("ExpiredTokenException", AccessDeniedError),
        ("UnrecognizedClientException", AccessDeniedError),
        ("InternalServerError", AwsError),
    ],
)
def test_codes_every_service_shares_have_their_class(code: str, expected: type[AwsError]) -> None:
    original = client_error(code, "the service's words")
    with pytest.raises(expected) as raised, translated("doing it"):
        raise original
    assert type(raised.value) is expected
    assert raised.value.code == code
    assert raised.value.__cause__ is original
    assert str(raised.value) == f"doing it: {code}: the service's words"


def test_message_text_never_decides_the_class() -> None:
    with pytest.raises(AwsError) as raised, translated("doing it"):
        raise client_error("ValidationException", "Rate exceeded: throttling, access denied")
    assert type(raised.value) is AwsError


def test_a_service_code_takes_the_class_the_adapter_names() -> None:
    codes = {"ValidationException": ResourceNotFoundError}
    with pytest.raises(ResourceNotFoundError), translated("doing it", codes):
        raise client_error("ValidationException")


def test_anything_not_from_botocore_passes_through_untouched() -> None:
    with pytest.raises(KeyError), translated("doing it"):
        raise KeyError("a bug, not an AWS failure")


# -- connection problems: one class, from every adapter ----------------------------------------

CALLS: dict[str, tuple[str, Callable[[], object]]] = {
    "stepfunctions": ("stepfunctions", lambda: stepfunctions.execution_status(EXECUTION)),
    "ecs": ("ecs", lambda: ecs.running_tasks(CLUSTER, "run-1")),
    "batch": ("batch", lambda: batch.unfinished_jobs(QUEUE, lambda name: True)),
    "scheduler": ("scheduler", lambda: scheduler.schedule_names("stepburst", "job-")),
    "events": ("events", lambda: events.put_event("default", "stepburst", "Run Finished", "{}")),
    "cloudformation": ("cloudformation", lambda: cloudformation.stack_outputs("stepburst")),
    "ssm": ("ssm", lambda: ssm.get_parameter("/stepburst/local/stack-outputs")),
    "dynamodb": ("dynamodb", lambda: Ledger("ledger", 90).list_runs("yelp")),
    "s3": ("s3", lambda: storage.get_bytes("bucket", "key")),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_unreachable_endpoint_is_aws_unavailable(name: str) -> None:
    service, call = CALLS[name]

    def unreachable(**_: Any) -> None:
        # Raised where botocore would send the request: before it, so no retries and no socket.
        raise EndpointConnectionError(endpoint_url="https://unreachable.example")

    aws.client(service).meta.events.register("before-call", unreachable)
    with pytest.raises(AwsUnavailableError, match=r"unreachable\.example") as raised:
        call()
    assert isinstance(raised.value.__cause__, EndpointConnectionError)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_no_credentials_is_aws_unavailable(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    aws.reset_clients()
    with pytest.raises(AwsUnavailableError, match="credentials"):
        CALLS[name][1]()


def test_no_region_is_aws_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    aws.reset_clients()
    with pytest.raises(AwsUnavailableError, match="region"):
        stepfunctions.execution_status(EXECUTION)


# -- Step Functions --------------------------------------------------------------------------


def test_start_execution_returns_the_arn_and_start_time(stub: Callable[[Any], Stubber]) -> None:
    started = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
    stub("stepfunctions").add_response(
        "start_execution",
        {"executionArn": EXECUTION, "startDate": started},
        {"stateMachineArn": MACHINE, "name": "run-1", "input": json.dumps({"job": "yelp"})},
    )
    execution = stepfunctions.start_execution(MACHINE, "run-1", {"job": "yelp"})
    assert execution == stepfunctions.StartedExecution(arn=EXECUTION, started_at=started)


def test_a_name_already_taken_is_execution_already_exists(
    stub: Callable[[Any], Stubber],
) -> None:
    stub("stepfunctions").add_client_error("start_execution", "ExecutionAlreadyExists")
    with pytest.raises(ExecutionAlreadyExistsError, match="run-1"):
        stepfunctions.start_execution(MACHINE, "run-1", {})


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("describe_execution", lambda: stepfunctions.execution_status(EXECUTION)),
        ("stop_execution", lambda: stepfunctions.stop_execution(EXECUTION, error="E", cause="c")),
    ],
)
def test_an_unknown_execution_is_execution_not_found(
    stub: Callable[[Any], Stubber], operation: str, call: Callable[[], object]
) -> None:
    stub("stepfunctions").add_client_error(operation, "ExecutionDoesNotExist")
    with pytest.raises(ExecutionNotFoundError):
        call()


def test_execution_status_reads_the_status(stub: Callable[[Any], Stubber]) -> None:
    stub("stepfunctions").add_response(
        "describe_execution",
        {
            "executionArn": EXECUTION,
            "stateMachineArn": MACHINE,
            "status": "ABORTED",
            "startDate": datetime(2024, 5, 1, tzinfo=UTC),
        },
        {"executionArn": EXECUTION},
    )
    assert stepfunctions.execution_status(EXECUTION) == "ABORTED"


# -- ECS and Batch ---------------------------------------------------------------------------


def test_running_tasks_reads_every_page(stub: Callable[[Any], Stubber]) -> None:
    stubber = stub("ecs")
    request = {"cluster": CLUSTER, "startedBy": "run-1", "desiredStatus": "RUNNING"}
    stubber.add_response("list_tasks", {"taskArns": ["t1"], "nextToken": "more"}, request)
    stubber.add_response("list_tasks", {"taskArns": ["t2"]}, {**request, "nextToken": "more"})
    assert ecs.running_tasks(CLUSTER, "run-1") == ["t1", "t2"]


def test_a_missing_cluster_is_resource_not_found(stub: Callable[[Any], Stubber]) -> None:
    stub("ecs").add_client_error("list_tasks", "ClusterNotFoundException")
    with pytest.raises(ResourceNotFoundError):
        ecs.running_tasks(CLUSTER, "run-1")


def test_a_stop_refused_is_access_denied(stub: Callable[[Any], Stubber]) -> None:
    stub("ecs").add_client_error("stop_task", "AccessDeniedException")
    with pytest.raises(AccessDeniedError):
        ecs.stop_task(CLUSTER, "t1", reason="stepburst cancel")


def test_unfinished_jobs_looks_in_every_unfinished_status(
    stub: Callable[[Any], Stubber],
) -> None:
    stubber = stub("batch")
    for status in batch.UNFINISHED:
        jobs = [
            {"jobId": f"{status}-mine", "jobName": "run-1-unit-3"},
            {"jobId": f"{status}-other", "jobName": "run-10-unit-3"},
        ]
        stubber.add_response(
            "list_jobs", {"jobSummaryList": jobs}, {"jobQueue": QUEUE, "jobStatus": status}
        )
    assert batch.unfinished_jobs(QUEUE, lambda name: name.startswith("run-1-unit-")) == [
        f"{status}-mine" for status in batch.UNFINISHED
    ]


def test_a_batch_code_without_a_class_keeps_its_code(stub: Callable[[Any], Stubber]) -> None:
    stub("batch").add_client_error("terminate_job", "ClientException")
    with pytest.raises(AwsError) as raised:
        batch.terminate_job("job-1", reason="stepburst cancel")
    assert raised.value.code == "ClientException"


# -- Scheduler -------------------------------------------------------------------------------

SCHEDULE = scheduler.Schedule(
    name="job-daily",
    group="stepburst",
    expression="cron(0 6 * * ? *)",
    timezone="Europe/Paris",
    enabled=False,
    description="stepburst job daily",
    state_machine_arn=MACHINE,
    role_arn="arn:aws:iam::123456789012:role/scheduler",
    input='{"job": "daily"}',
    max_event_age_seconds=3600,
    max_retry_attempts=10,
)


def test_a_schedule_is_created_exactly_as_described(stub: Callable[[Any], Stubber]) -> None:
    stub("scheduler").add_response(
        "create_schedule",
        {"ScheduleArn": "arn:aws:scheduler:us-east-1:123456789012:schedule/stepburst/job-daily"},
        {
            "Name": "job-daily",
            "GroupName": "stepburst",
            "ScheduleExpression": "cron(0 6 * * ? *)",
            "ScheduleExpressionTimezone": "Europe/Paris",
            "State": "DISABLED",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Description": "stepburst job daily",
            "Target": {
                "Arn": MACHINE,
                "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
                "Input": '{"job": "daily"}',
                "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
            },
        },
    )
    scheduler.create_schedule(SCHEDULE)


def test_a_missing_schedule_group_is_resource_not_found(stub: Callable[[Any], Stubber]) -> None:
    stub("scheduler").add_client_error("list_schedules", "ResourceNotFoundException")
    with pytest.raises(ResourceNotFoundError):
        scheduler.schedule_names("stepburst", "job-")


def test_an_invalid_schedule_is_an_aws_error_with_its_code(
    stub: Callable[[Any], Stubber],
) -> None:
    stub("scheduler").add_client_error("update_schedule", "ValidationException")
    with pytest.raises(AwsError) as raised:
        scheduler.update_schedule(SCHEDULE)
    assert raised.value.code == "ValidationException"


# -- EventBridge -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry_code", "expected"),
    [("ThrottlingException", ThrottledError), ("InternalException", AwsError)],
)
def test_a_rejected_entry_is_raised_not_dropped(
    stub: Callable[[Any], Stubber], entry_code: str, expected: type[AwsError]
) -> None:
    stub("events").add_response(
        "put_events",
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": entry_code, "ErrorMessage": "no"}]},
        {"Entries": ANY},
    )
    with pytest.raises(expected) as raised:
        events.put_event("default", "stepburst", "Run Finished", "{}")
    assert type(raised.value) is expected
    assert raised.value.code == entry_code


def test_an_accepted_event_is_put_on_the_bus(stub: Callable[[Any], Stubber]) -> None:
    entry = {
        "Source": "stepburst",
        "DetailType": "Run Finished",
        "Detail": '{"run_id": "r"}',
        "EventBusName": "custom",
    }
    stub("events").add_response(
        "put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e1"}]}, {"Entries": [entry]}
    )
    events.put_event("custom", "stepburst", "Run Finished", '{"run_id": "r"}')


def test_a_missing_bus_is_resource_not_found(stub: Callable[[Any], Stubber]) -> None:
    stub("events").add_client_error("put_events", "ResourceNotFoundException")
    with pytest.raises(ResourceNotFoundError):
        events.put_event("gone", "stepburst", "Run Finished", "{}")


# -- CloudFormation and SSM ------------------------------------------------------------------


def test_stack_outputs_by_key(stub: Callable[[Any], Stubber]) -> None:
    stub("cloudformation").add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "stepburst",
                    "CreationTime": datetime(2024, 5, 1, tzinfo=UTC),
                    "StackStatus": "UPDATE_COMPLETE",
                    "Outputs": [
                        {"OutputKey": "LedgerTableName", "OutputValue": "ledger"},
                        {"OutputKey": "LedgerRetentionDays", "OutputValue": "30"},
                    ],
                }
            ]
        },
        {"StackName": "stepburst"},
    )
    assert cloudformation.stack_outputs("stepburst") == {
        "LedgerTableName": "ledger",
        "LedgerRetentionDays": "30",
    }


def test_a_missing_stack_is_resource_not_found(stub: Callable[[Any], Stubber]) -> None:
    stub("cloudformation").add_client_error("describe_stacks", "ValidationError")
    with pytest.raises(ResourceNotFoundError, match="stepburst"):
        cloudformation.stack_outputs("stepburst")


def test_a_missing_parameter_is_parameter_not_found(stub: Callable[[Any], Stubber]) -> None:
    stub("ssm").add_client_error("get_parameter", "ParameterNotFound")
    with pytest.raises(ParameterNotFoundError):
        ssm.get_parameter("/stepburst/local/stack-outputs")


# -- DynamoDB and the ledger -----------------------------------------------------------------


def test_a_claimed_trigger_is_a_failed_condition_not_an_error(
    stub: Callable[[Any], Stubber],
) -> None:
    stub("dynamodb").add_client_error("put_item", "ConditionalCheckFailedException")
    assert Ledger("ledger", 90).claim_trigger("t1", "run-1", {}, execution_id="e") is False


def test_a_write_whose_condition_fails_is_condition_failed(
    stub: Callable[[Any], Stubber],
) -> None:
    stub("dynamodb").add_client_error("update_item", "ConditionalCheckFailedException")
    with pytest.raises(ConditionFailedError):
        Ledger("ledger", 90).update_run("missing", {"status": "CANCELLED"})


def test_listing_runs_translates_errors(stub: Callable[[Any], Stubber]) -> None:
    stub("dynamodb").add_client_error("query", "ProvisionedThroughputExceededException")
    with pytest.raises(ThrottledError):
        Ledger("ledger", 90).list_runs("yelp")


def test_a_missing_table_is_resource_not_found(stub: Callable[[Any], Stubber]) -> None:
    stub("dynamodb").add_client_error("get_item", "ResourceNotFoundException")
    with pytest.raises(ResourceNotFoundError):
        Ledger("gone", 90).get_run("run-1")


def test_what_a_batch_write_leaves_over_is_sent_again(stub: Callable[[Any], Stubber]) -> None:
    stubber = stub("dynamodb")
    records = [{"pk": "RUN#r", "sk": f"ITEM#{i}", "n": i} for i in range(30)]
    left = {"PutRequest": {"Item": {"pk": {"S": "RUN#r"}, "sk": {"S": "ITEM#3"}}}}
    stubber.add_response("batch_write_item", {"UnprocessedItems": {"ledger": [left]}})
    stubber.add_response(
        "batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": {"ledger": [left]}}
    )
    stubber.add_response("batch_write_item", {"UnprocessedItems": {}})
    Table("ledger").put_many(records)


def test_values_round_trip_in_plain_python(stub: Callable[[Any], Stubber]) -> None:
    stub("dynamodb").add_response(
        "get_item",
        {"Item": {"pk": {"S": "RUN#r"}, "n": {"N": "3"}, "x": {"N": "0.5"}}},
        {"TableName": "ledger", "Key": {"pk": {"S": "RUN#r"}}, "ConsistentRead": True},
    )
    assert Table("ledger").get({"pk": "RUN#r"}) == {"pk": "RUN#r", "n": 3, "x": 0.5}


# -- S3 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("404", ObjectNotFoundError),
        ("403", AccessDeniedError),
        ("503", ThrottledError),
        ("SlowDown", ThrottledError),
        ("PreconditionFailed", SourceChangedError),
    ],
)
def test_s3_codes_have_their_class(
    stub: Callable[[Any], Stubber], code: str, expected: type[Exception]
) -> None:
    stub("s3").add_client_error("head_object", code)
    with pytest.raises(expected) as raised:
        storage.head_object(storage.S3Object("bucket", "key"))
    assert type(raised.value) is expected
    assert isinstance(raised.value.__cause__, ClientError)


def test_an_upload_that_is_refused_is_access_denied(
    stub: Callable[[Any], Stubber], tmp_path: Path
) -> None:
    source = tmp_path / "b.jsonl"
    source.write_bytes(b"{}\n")
    stub("s3").add_client_error("put_object", "AccessDenied")
    with pytest.raises(AccessDeniedError, match=r"s3://bucket/incoming/b\.jsonl"):
        storage.put_file("bucket", "incoming/b.jsonl", source)


def test_a_connection_dropped_mid_request_is_its_own_retryable_error() -> None:
    from botocore.exceptions import ConnectionClosedError

    from stepburst.adapters.translation import translated
    from stepburst.errors import ConnectionDroppedError

    with pytest.raises(ConnectionDroppedError, match="dropped") as raised, translated("reading X"):
        raise ConnectionClosedError(endpoint_url="http://127.0.0.1:4566")
    assert isinstance(raised.value.__cause__, ConnectionClosedError)
