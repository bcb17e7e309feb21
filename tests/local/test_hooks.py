"""Conformance tests: one per moto adaptation in stepburst_local.patches.

Each test pins the AWS behaviour a hook restores, on small state machines of its own. When a
moto upgrade breaks an adaptation, the test named after it fails. ``test_every_hook_is_tested``
keeps the list complete.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, IncompleteReadError
from botocore.retries.standard import ExponentialBackoff, RetryContext
from local_stage import FUNCTION_ARN, RECORDER_ARN, Stage, recorded, task_failures
from tests.polling import Pending, failed_execution, poll

from stepburst_local import binding, patches
from stepburst_local.moto_internals import (
    state_task_service_callback,
    stepfunctions_parser_backends,
)
from stepburst_local.patches import clients
from stepburst_local.patches.quotas import PAYLOAD_LIMIT_BYTES

pytestmark = pytest.mark.engine


def _lambda_task(payload: Any, **extra: Any) -> dict[str, Any]:
    key = "Payload.$" if isinstance(payload, str) else "Payload"
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": FUNCTION_ARN, key: payload},
        "ResultSelector": {"payload.$": "$.Payload"},
        "End": True,
        **extra,
    }


def _one(state: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": "Only", "States": {"Only": state}}


def test_every_hook_is_tested(stage: Stage) -> None:
    names = {name for name in globals() if name.startswith("test_")}
    untested = [
        hook for hook in patches.HOOKS if not any(n.startswith(f"test_{hook}") for n in names)
    ]
    assert untested == []
    assert patches.installed()


def test_every_hook_names_its_upstream_issue_and_declares_its_patches() -> None:
    for hook in patches.HOOKS.values():
        assert re.search(r"getmoto/moto#\d+|no upstream issue found", hook.upstream), hook.name
        assert hook.patches, hook.name


def test_every_module_that_imported_a_patched_function_gets_the_patch(stage: Stage) -> None:
    stale = [
        f"{name}.{declared.attribute}"
        for hook in patches.HOOKS.values()
        for declared in hook.patches
        # A patched function, not a value set in one module (as a class that module uses).
        if declared.replacement is not None and callable(declared.original)
        for name, module in list(sys.modules.items())
        if name.startswith("moto.")
        and getattr(module, declared.attribute, None) is declared.original
    ]
    assert stale == []  # add them to the importer lists in stepburst_local/moto_internals.py


# -- Lambda ------------------------------------------------------------------------------------


def test_lambda_invoke_runs_the_handler_with_its_environment_and_context(stage: Stage) -> None:
    described, _ = stage.run(_one(_lambda_task({"action": "context"})))

    assert described["status"] == "SUCCEEDED"
    payload = json.loads(described["output"])["payload"]
    assert payload["marker"] == "from-template"
    assert payload["cold_start_marker"] == "from-template"
    assert payload["function_name"] == "conformance-fn"
    assert payload["invoked_function_arn"] == FUNCTION_ARN
    assert payload["memory_limit_in_mb"] == 512
    assert 0 < payload["remaining_ms"] <= 1000
    assert len(payload["aws_request_id"]) == 36


def test_lambda_invoke_reports_an_exception_like_lambda(stage: Stage) -> None:
    state = _lambda_task(
        {"action": "fail", "message": "no luck"},
        Catch=[{"ErrorEquals": ["ItemsFailedError"], "Next": "Caught"}],
    )
    definition = {
        "StartAt": "Only",
        "States": {"Only": state, "Caught": {"Type": "Pass", "End": True}},
    }

    described, history = stage.run(definition)

    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["Error"] == "ItemsFailedError"
    cause = json.loads(output["Cause"])
    assert cause["errorType"] == "ItemsFailedError"
    assert cause["errorMessage"] == "no luck"
    assert any("lambda_handler" in frame for frame in cause["stackTrace"])
    assert not any("stepburst/local" in frame for frame in cause["stackTrace"])
    assert task_failures(history) == ["ItemsFailedError"]


def test_lambda_invoke_enforces_the_function_timeout(stage: Stage) -> None:
    started = time.monotonic()
    described, history = stage.run(_one(_lambda_task({"action": "sleep", "seconds": 5})))

    assert time.monotonic() - started < 4
    assert described["status"] == "FAILED"
    assert described["error"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in json.loads(described["cause"])["errorMessage"]
    assert task_failures(history) == ["Sandbox.Timedout"]


def test_lambda_invoke_throttle_fault_is_a_retriable_service_error(stage: Stage) -> None:
    stage.cloud.faults.lambda_throttle("ConformanceFunction", times=2)
    retry = [
        {
            "ErrorEquals": ["Lambda.TooManyRequestsException"],
            "IntervalSeconds": 2,
            "MaxAttempts": 3,
            "BackoffRate": 2,
        }
    ]

    described, history = stage.run(_one(_lambda_task({"action": "echo"}, Retry=retry)))

    assert described["status"] == "SUCCEEDED"
    assert task_failures(history) == ["Lambda.TooManyRequestsException"] * 2
    cause = next(e for e in history if e["type"] == "TaskFailed")["taskFailedEventDetails"]
    assert "Status Code: 429" in cause["cause"]


def test_lambda_invoke_direct_answers_as_the_lambda_api_does(stage: Stage) -> None:
    clients.forget_clients()
    task = _lambda_task({"action": "echo", "n": 1})
    del task["ResultSelector"]

    described, _ = stage.run(_one(task))

    assert described["status"] == "SUCCEEDED"
    # The engine's function ran without the interpreter's Lambda client ...
    assert "lambda" not in [service for _, service in clients.cached_clients()]
    # ... and the task saw what it gets from botocore's parse of the Lambda API's answer.
    through_api = clients.client("us-east-1", "lambda").invoke(
        FunctionName=FUNCTION_ARN, Payload=json.dumps({"action": "echo", "n": 1}).encode()
    )
    expected = {
        key: through_api[key]
        for key in ("StatusCode", "FunctionError", "ExecutedVersion", "LogResult")
        if key in through_api
    }
    expected["Payload"] = json.loads(through_api["Payload"].read())
    assert json.loads(described["output"]) == expected


def test_lambda_invoke_direct_leaves_other_functions_to_moto(stage: Stage) -> None:
    # moto's Lambda without Docker echoes the payload of a function the engine does not run.
    other = FUNCTION_ARN.replace("conformance-fn", "not-the-engines")
    task = _lambda_task({"echoed": True})
    task["Parameters"]["FunctionName"] = other

    described, _ = stage.run(_one(task))

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"payload": {"echoed": True}}


def _s3_listing(stage: Stage) -> dict[str, Any]:
    return {
        "StartAt": "List",
        "States": {
            "List": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:listObjectsV2",
                "Parameters": {"Bucket": stage.bucket},
                "ResultSelector": {"count.$": "$.KeyCount"},
                "End": True,
            }
        },
    }


def test_client_cache_reuses_one_client_per_service(stage: Stage) -> None:
    stage.run(_s3_listing(stage))
    stage.run(_s3_listing(stage))

    s3_clients = [key for key in clients.cached_clients() if key[1] == "s3"]
    assert len(s3_clients) == 1
    first = clients.client("us-east-1", "s3")
    assert clients.client("us-east-1", "s3") is first


# -- ECS ---------------------------------------------------------------------------------------


def _ecs_sync(command: list[str], stage: Stage, **extra: Any) -> dict[str, Any]:
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::ecs:runTask.sync",
        "Parameters": stage.ecs_parameters(command),
        "End": True,
        **extra,
    }
    if "Next" in state:
        del state["End"]
    return state


def test_service_casing_converts_parameters_and_results(stage: Stage) -> None:
    described, history = stage.run(_one(_ecs_sync([], stage)))

    assert described["status"] == "SUCCEEDED"
    task = json.loads(described["output"])
    # PascalCase results, as Step Functions returns them.
    assert task["LastStatus"] == "STOPPED"
    assert task["Containers"][0]["Name"] == "worker"
    # Parameters moto used to drop: the capacity provider strategy and StartedBy.
    assert task["CapacityProviderName"] == "FARGATE_SPOT"
    assert task["StartedBy"] == "conformance-run"
    assert isinstance(task["StoppedAt"], int)  # epoch milliseconds, as on AWS
    scheduled = next(e for e in history if e["type"] == "TaskScheduled")
    assert json.loads(scheduled["taskScheduledEventDetails"]["parameters"])["Cluster"]


def test_ecs_sync_reads_the_exit_code_with_a_definite_path(stage: Stage) -> None:
    definition = {
        "StartAt": "Run",
        "States": {
            "Run": _ecs_sync(["--exit", "0"], stage, Next="Check"),
            "Check": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.Containers[0].ExitCode", "NumericEquals": 0, "Next": "Ok"}
                ],
                "Default": "Bad",
            },
            "Ok": {"Type": "Succeed"},
            "Bad": {"Type": "Fail", "Error": "Bad"},
        },
    }
    described, _ = stage.run(definition)

    assert described["status"] == "SUCCEEDED"


def test_ecs_sync_fails_a_non_zero_exit_with_the_task_as_cause(stage: Stage) -> None:
    described, history = stage.run(_one(_ecs_sync(["--exit", "3"], stage)))

    assert described["status"] == "FAILED"
    assert described["error"] == "States.TaskFailed"
    stopped = json.loads(described["cause"])
    assert stopped["Containers"][0]["ExitCode"] == 3
    assert stopped["StopCode"] == "EssentialContainerExited"
    assert stopped["StoppedReason"] == "Essential container in task exited"
    assert task_failures(history) == ["States.TaskFailed"]


def test_ecs_sync_names_service_errors_after_the_sdk_exception(stage: Stage) -> None:
    state = _ecs_sync([], stage)
    state["Parameters"]["Cluster"] = "no-such-cluster"

    described, _ = stage.run(_one(state))

    assert described["status"] == "FAILED"
    assert described["error"].startswith("ECS.")
    assert "Service: AmazonECS" in described["cause"]


def test_ecs_capacity_fault_fails_sync_with_amazon_ecs_unknown_then_retries(
    stage: Stage,
) -> None:
    stage.cloud.faults.ecs_capacity(reason="RESOURCE:MEMORY", times=2)
    retry = [{"ErrorEquals": ["AmazonECS.Unknown"], "IntervalSeconds": 10, "MaxAttempts": 3}]

    described, history = stage.run(_one(_ecs_sync([], stage, Retry=retry)))

    assert described["status"] == "SUCCEEDED"
    assert task_failures(history) == ["AmazonECS.Unknown"] * 2
    cause = next(e for e in history if e["type"] == "TaskFailed")["taskFailedEventDetails"]
    assert json.loads(cause["cause"])["Failures"][0]["Reason"] == "RESOURCE:MEMORY"


def test_ecs_tasks_run_as_processes_and_stop_with_their_exit_code(stage: Stage) -> None:
    ecs = stage.cloud.client("ecs")
    task = _run_worker_task(stage, ["--sleep", "0.5", "--exit", "7"])

    running = ecs.describe_tasks(cluster=stage.cluster, tasks=[task["taskArn"]])["tasks"][0]
    assert running["lastStatus"] == "RUNNING"
    stopped = _wait_task(stage, task["taskArn"])
    assert stopped["containers"][0]["exitCode"] == 7
    assert stopped["stopCode"] == "EssentialContainerExited"
    log = stage.cloud.runner.log_tail(task["taskArn"]) if stage.cloud.runner else ""
    assert stage.cloud.endpoint_url in log
    assert "from-task-definition" in log


def test_ecs_tasks_run_stop_task_kills_the_process(stage: Stage) -> None:
    ecs = stage.cloud.client("ecs")
    task = _run_worker_task(stage, ["--sleep", "60"])
    ecs.stop_task(cluster=stage.cluster, task=task["taskArn"], reason="enough")

    stopped = _wait_container_exit(stage, task["taskArn"])
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["stoppedReason"] == "enough"
    assert stopped["containers"][0]["exitCode"] == 143  # SIGTERM


def test_stopping_a_task_ends_every_process_its_container_started(
    stage: Stage, tmp_path: Path
) -> None:
    ecs = stage.cloud.client("ecs")
    pidfile = tmp_path / "child.pid"
    task = _run_worker_task(stage, ["--sleep", "60", "--child", str(pidfile)])
    child = int(
        poll(lambda: pidfile.exists() and pidfile.read_text(), what="the child", timeout=20)
    )

    ecs.stop_task(cluster=stage.cluster, task=task["taskArn"], reason="enough")

    _wait_container_exit(stage, task["taskArn"])
    poll(lambda: not _alive(child), what=f"process {child} to end", timeout=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has ended; only its parent (gone with the group) had to reap it.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


def _run_worker_task(stage: Stage, command: list[str]) -> dict[str, Any]:
    """RunTask of the conformance worker on Fargate with ``command``."""
    return dict(
        stage.cloud.client("ecs").run_task(
            cluster=stage.cluster,
            taskDefinition=stage.task_definition,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": stage.subnets,
                    "securityGroups": [stage.security_group],
                }
            },
            overrides={"containerOverrides": [{"name": "worker", "command": command}]},
        )["tasks"][0]
    )


def _wait_task(stage: Stage, arn: str, timeout: float = 20) -> dict[str, Any]:
    ecs = stage.cloud.client("ecs")

    def stopped() -> dict[str, Any] | Pending:
        task = ecs.describe_tasks(cluster=stage.cluster, tasks=[arn])["tasks"][0]
        return dict(task) if task["lastStatus"] == "STOPPED" else Pending(task["lastStatus"])

    return poll(stopped, what=f"task {arn} to stop", timeout=timeout, interval=0.05)


def _wait_container_exit(stage: Stage, arn: str, timeout: float = 20) -> dict[str, Any]:
    ecs = stage.cloud.client("ecs")

    def exited() -> dict[str, Any] | Pending:
        task = ecs.describe_tasks(cluster=stage.cluster, tasks=[arn])["tasks"][0]
        if task["containers"][0].get("exitCode") is not None:
            return dict(task)
        return Pending(task["lastStatus"])

    return poll(exited, what=f"the container of {arn} to exit", timeout=timeout, interval=0.05)


# -- Batch -------------------------------------------------------------------------------------


def _batch_sync(command: list[str], stage: Stage) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::batch:submitJob.sync",
        "Parameters": stage.batch_parameters(command),
        "End": True,
    }


def test_batch_sync_success_reports_the_exit_code(stage: Stage) -> None:
    described, _ = stage.run(_one(_batch_sync(["--exit", "0"], stage)))

    assert described["status"] == "SUCCEEDED"
    job = json.loads(described["output"])
    assert job["Status"] == "SUCCEEDED"
    assert job["Container"]["ExitCode"] == 0


def test_batch_sync_failure_cause_is_the_job_description(stage: Stage) -> None:
    described, history = stage.run(_one(_batch_sync(["--exit", "4"], stage)))

    assert described["status"] == "FAILED"
    assert described["error"] == "States.TaskFailed"
    job = json.loads(described["cause"])
    assert job["Status"] == "FAILED"
    assert job["Container"]["ExitCode"] == 4
    assert job["StatusReason"] == "Essential container in task exited"
    assert task_failures(history) == ["States.TaskFailed"]


def test_batch_sync_names_service_errors_after_the_sdk_exception(stage: Stage) -> None:
    state = _batch_sync([], stage)
    state["Parameters"]["JobQueue"] = "no-such-queue"

    described, _ = stage.run(_one(state))

    assert described["status"] == "FAILED"
    assert described["error"] in ("Batch.ClientException", "Batch.AWSBatchException")
    assert "Service: AWSBatch" in described["cause"]


def test_batch_jobs_run_and_describe_like_aws(stage: Stage) -> None:
    batch = stage.cloud.client("batch")
    job = batch.submit_job(
        jobName="direct",
        jobQueue=stage.job_queue,
        jobDefinition=stage.job_definition,
        containerOverrides={"command": ["--sleep", "0.5", "--exit", "5"]},
    )
    first = batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]
    assert first["status"] == "RUNNING"

    done = _wait_job(stage, job["jobId"])
    assert done["status"] == "FAILED"
    assert done["container"]["exitCode"] == 5
    assert done["statusReason"] == "Essential container in task exited"
    assert done["attempts"][-1]["container"]["exitCode"] == 5
    # moto appended one environment entry per describe; the description must not grow.
    names = [entry["name"] for entry in done["container"]["environment"]]
    assert len(names) == len(set(names))


def test_batch_jobs_run_terminate_kills_the_process(stage: Stage) -> None:
    batch = stage.cloud.client("batch")
    job = batch.submit_job(
        jobName="long",
        jobQueue=stage.job_queue,
        jobDefinition=stage.job_definition,
        containerOverrides={"command": ["--sleep", "60"]},
    )
    batch.terminate_job(jobId=job["jobId"], reason="stop it")

    done = _wait_job(stage, job["jobId"])
    assert done["status"] == "FAILED"
    assert done["statusReason"] == "stop it"


def _wait_job(stage: Stage, job_id: str, timeout: float = 20) -> dict[str, Any]:
    batch = stage.cloud.client("batch")

    def finished() -> dict[str, Any] | Pending:
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        return dict(job) if job["status"] in ("SUCCEEDED", "FAILED") else Pending(job["status"])

    return poll(finished, what=f"Batch job {job_id} to finish", timeout=timeout, interval=0.05)


# -- the interpreter ---------------------------------------------------------------------------


def test_jsonpath_definite_path_selects_one_value(stage: Stage) -> None:
    definition = {
        "StartAt": "Pick",
        "States": {
            "Pick": {
                "Type": "Pass",
                "Parameters": {"one.$": "$.a[0].b", "all.$": "$.a[*].b"},
                "Next": "Check",
            },
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.one", "NumericEquals": 1, "Next": "Done"}],
                "Default": "Wrong",
            },
            "Done": {"Type": "Succeed"},
            "Wrong": {"Type": "Fail", "Error": "Wrong"},
        },
    }

    described, _ = stage.run(definition, {"a": [{"b": 1}, {"b": 2}]})

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"one": 1, "all": [1, 2]}


def test_definition_adaptation_parses_a_definition_once_for_every_start(stage: Stage) -> None:
    from stepburst_local.moto_internals import AmazonStateLanguageParser

    definition = json.dumps(
        {
            "StartAt": "Count",
            "States": {"Count": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "End": True}},
        }
    )
    first, first_tree = AmazonStateLanguageParser.parse(definition)
    second, second_tree = AmazonStateLanguageParser.parse(definition)

    assert second_tree is first_tree
    assert second is not first  # each start gets a program of its own
    machine = stage.state_machine(json.loads(definition))
    for n in (1, 2):
        arn = stage.cloud.start_state_machine(machine, {"n": n})
        described = stage.cloud.wait_for_execution(arn, timeout=30)
        assert json.loads(described["output"]) == {"n": n}


def test_jsonpath_definite_result_path_is_parsed_once_and_still_merges(stage: Stage) -> None:
    from stepburst_local.moto_internals import result_path

    definition = {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Pass", "Result": 1, "ResultPath": "$.out.first", "Next": "Second"},
            "Second": {"Type": "Pass", "Result": 2, "ResultPath": "$.out.second", "End": True},
        },
    }

    described, _ = stage.run(definition, {"kept": True})

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"kept": True, "out": {"first": 1, "second": 2}}
    assert result_path.parse("$.out.first") is result_path.parse("$.out.first")


def _distributed_map(**fields: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Map",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.key"},
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Call",
            "States": {
                "Call": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": FUNCTION_ARN, "Payload.$": "$"},
                    "ResultSelector": {"payload.$": "$.Payload"},
                    "End": True,
                }
            },
        },
        "End": True,
    }
    state.update(fields)
    return state


def _put_items(stage: Stage, key: str, body: str) -> dict[str, str]:
    stage.cloud.client("s3").put_object(Bucket=stage.bucket, Key=key, Body=body.encode())
    return {"bucket": stage.bucket, "key": key}


def test_definition_adaptation_accepts_what_moto_cannot_parse(stage: Stage) -> None:
    state = _distributed_map(
        ItemBatcher={"MaxItemsPerBatch": 2},
        ToleratedFailurePercentage=10,
        ItemSelector={"action.$": "$$.Map.Item.Value.action"},
    )
    state["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] = "EXPRESS"
    arn = stage.state_machine(_one(state))

    stored = stage.cloud.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    assert json.loads(stored["definition"]) == _one(state)  # the deployed definition


def test_jsonl_reader_reads_one_item_per_line(stage: Stage) -> None:
    lines = "\n".join(json.dumps({"action": "echo", "n": n}) for n in range(5)) + "\n\n"
    state = _distributed_map()
    state["ItemReader"]["ReaderConfig"]["InputType"] = "JSONL"
    state["ResultSelector"] = {"count.$": "States.ArrayLength($)"}

    described, _ = stage.run(_one(state), _put_items(stage, "items.jsonl", lines))

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"count": 5}


def test_jsonl_reader_fails_on_a_line_that_is_not_json(stage: Stage) -> None:
    state = _distributed_map()
    state["ItemReader"]["ReaderConfig"]["InputType"] = "JSONL"

    described, _ = stage.run(_one(state), _put_items(stage, "bad.jsonl", '{"a": 1}\n{"a": \n'))

    assert described["status"] == "FAILED"
    assert described["error"] == "States.ItemReaderFailed"


def test_distributed_map_runs_many_items_at_low_concurrency(stage: Stage) -> None:
    items = [{"action": "echo", "n": n} for n in range(1500)]
    state = _distributed_map(MaxConcurrency=5, ResultSelector={"count.$": "States.ArrayLength($)"})
    state["ItemProcessor"]["States"] = {"Call": {"Type": "Pass", "End": True}}

    described, history = stage.run(
        _one(state), _put_items(stage, "many.json", json.dumps(items)), timeout=120
    )

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"count": 1500}
    # Children are executions of their own: their events are not in the parent's history.
    assert len(history) < 20


def test_distributed_map_fails_above_the_tolerated_failure_percentage(stage: Stage) -> None:
    items = [{"action": "unit", "unit": {"index": n, "bad": n in (2, 5)}} for n in range(10)]
    source = _put_items(stage, "units.json", json.dumps(items))
    state = _distributed_map(ItemSelector={"action": "unit", "unit.$": "$$.Map.Item.Value.unit"})

    for tolerated, expected in ((10, "FAILED"), (20, "SUCCEEDED")):
        state["ToleratedFailurePercentage"] = tolerated
        described, history = stage.run(_one(state), source)

        assert described["status"] == expected, tolerated
        if expected == "FAILED":
            assert described["error"] == "States.ExceedToleratedFailureThreshold"
            assert any(e["type"] == "MapRunFailed" for e in history)


def test_distributed_map_tolerated_failure_path_and_default(stage: Stage) -> None:
    items = [{"action": "unit", "unit": {"index": n, "bad": n == 0}} for n in range(4)]
    source = _put_items(stage, "one-bad.json", json.dumps(items))
    state = _distributed_map(ItemSelector={"action": "unit", "unit.$": "$$.Map.Item.Value.unit"})

    described, _ = stage.run(_one(state), source)
    assert described["error"] == "States.ExceedToleratedFailureThreshold"  # default: none

    state["ToleratedFailurePercentagePath"] = "$.tolerated"
    described, _ = stage.run(_one(state), {**source, "tolerated": 25})
    assert described["status"] == "SUCCEEDED"


def test_distributed_map_batches_items_like_item_batcher(stage: Stage) -> None:
    items = [{"n": n} for n in range(5)]
    state = _distributed_map(
        ItemBatcher={"MaxItemsPerBatch": 2, "BatchInput": {"run.$": "$.run"}},
        ItemSelector={"value.$": "$$.Map.Item.Value.n"},
    )
    state["ItemProcessor"]["States"] = {"Call": {"Type": "Pass", "End": True}}

    described, _ = stage.run(
        _one(state), {**_put_items(stage, "batch.json", json.dumps(items)), "run": "r1"}
    )

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == [
        {"Items": [{"value": 0}, {"value": 1}], "BatchInput": {"run": "r1"}},
        {"Items": [{"value": 2}, {"value": 3}], "BatchInput": {"run": "r1"}},
        {"Items": [{"value": 4}], "BatchInput": {"run": "r1"}},
    ]


def test_inline_map_iterative_handles_long_item_lists(stage: Stage) -> None:
    definition = _one(
        {
            "Type": "Map",
            "ItemsPath": "$.items",
            "MaxConcurrency": 1,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Each",
                "States": {"Each": {"Type": "Pass", "End": True}},
            },
            "ResultSelector": {"count.$": "States.ArrayLength($)"},
            "End": True,
        }
    )
    limit = sys.getrecursionlimit()

    described, _ = stage.run(definition, {"items": list(range(limit + 500))}, timeout=120)

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"count": limit + 500}


def test_result_writer_writes_result_files_and_manifest(stage: Stage) -> None:
    items = [{"action": "unit", "unit": {"index": n, "bad": n == 1}} for n in range(3)]
    state = _distributed_map(
        ItemSelector={"action": "unit", "unit.$": "$$.Map.Item.Value.unit"},
        ToleratedFailurePercentage=50,
        ResultWriter={
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": stage.bucket, "Prefix.$": "$.prefix"},
        },
    )
    source = _put_items(stage, "written.json", json.dumps(items))

    described, _ = stage.run(_one(state), {**source, "prefix": "results/run-1"})

    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    details = output["ResultWriterDetails"]
    assert details["Key"].startswith("results/run-1/")
    assert details["Key"].endswith("manifest.json")
    s3 = stage.cloud.client("s3")
    manifest = json.loads(s3.get_object(Bucket=stage.bucket, Key=details["Key"])["Body"].read())
    assert manifest["MapRunArn"] == output["MapRunArn"]
    succeeded_key = manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
    failed_key = manifest["ResultFiles"]["FAILED"][0]["Key"]
    assert succeeded_key.endswith("/SUCCEEDED_0.json")
    assert failed_key.endswith("/FAILED_0.json")
    succeeded = json.loads(s3.get_object(Bucket=stage.bucket, Key=succeeded_key)["Body"].read())
    failed = json.loads(s3.get_object(Bucket=stage.bucket, Key=failed_key)["Body"].read())
    assert [json.loads(e["Input"])["unit"]["index"] for e in succeeded] == [0, 2]
    assert json.loads(succeeded[0]["Output"]) == {"payload": {"unit": 0}}
    assert failed[0]["Status"] == "FAILED"
    assert failed[0]["Error"] == "ItemsFailedError"
    assert failed[0]["ExecutionArn"].startswith("arn:aws:states:us-east-1:123456789012:execution:")


def test_payload_quota_fails_states_over_256_kib(stage: Stage) -> None:
    definition = _one(
        {"Type": "Pass", "Parameters": {"a.$": "$.text", "b.$": "$.text"}, "End": True}
    )

    small, _ = stage.run(definition, {"text": "x" * 120_000})
    large, _ = stage.run(definition, {"text": "x" * 140_000})

    assert small["status"] == "SUCCEEDED"
    assert large["status"] == "FAILED"
    assert large["error"] == "States.DataLimitExceeded"


def test_payload_quota_allows_exactly_256_kib(stage: Stage) -> None:
    overhead = len(json.dumps({"a": ""}))
    exact = {"a": "x" * (PAYLOAD_LIMIT_BYTES - overhead)}
    definition = _one({"Type": "Pass", "End": True})

    described, _ = stage.run(definition, exact)

    assert described["status"] == "SUCCEEDED"


def test_history_quota_fails_an_execution_at_its_event_limit(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine's limit is AWS's 25,000 events unless configured; a small one walks fast.
    assert binding.HISTORY_EVENT_LIMIT == 25_000
    monkeypatch.setattr(stage.cloud, "history_limit", 300)
    definition = {
        "StartAt": "Loop",
        "States": {
            "Loop": {
                "Type": "Pass",
                "Parameters": {"n.$": "States.MathAdd($.n, 1)"},
                "Next": "Check",
            },
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericLessThan": 10**6, "Next": "Loop"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    arn = stage.cloud.start_state_machine(stage.state_machine(definition), {"n": 0})

    described = stage.cloud.wait_for_execution(arn, timeout=60)

    assert described["status"] == "FAILED"
    assert described["error"] == "States.Runtime"
    assert described["cause"] == "The execution reached the maximum number of history events (300)."
    history = stage.cloud.history(arn)
    assert history[-1]["type"] == "ExecutionFailed"
    assert 300 <= len(history) <= 302  # the limit, and the failure event itself


def test_time_scale_shortens_waits_and_retry_intervals(stage: Stage) -> None:
    stage.cloud.faults.lambda_throttle("conformance-fn", times=1)
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", "Seconds": 100, "Next": "Call"},
            "Call": _lambda_task(
                {"action": "echo"},
                Retry=[
                    {
                        "ErrorEquals": ["Lambda.TooManyRequestsException"],
                        "IntervalSeconds": 60,
                        "MaxAttempts": 2,
                    }
                ],
            ),
        },
    }
    started = time.monotonic()

    described, _ = stage.run(definition)

    assert described["status"] == "SUCCEEDED"
    assert 1.5 < time.monotonic() - started < 5  # 100 s + 60 s at time_scale 0.01


def test_sync_poll_notices_a_stopped_container_quickly(stage: Stage) -> None:
    assert state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK == 0.02
    started = time.monotonic()
    described, _ = stage.run(_one(_batch_sync([], stage)))
    assert described["status"] == "SUCCEEDED"
    assert time.monotonic() - started < 3


def test_stop_execution_stops_the_containers_it_started(stage: Stage) -> None:
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    _one(_ecs_sync(["--sleep", "60"], stage)),
                    _one(_batch_sync(["--sleep", "60"], stage)),
                ],
                "End": True,
            }
        },
    }
    arn = stage.cloud.start_state_machine(stage.state_machine(definition), {})
    runner = stage.cloud.runner
    assert runner is not None

    def both_running() -> list[Any]:
        running = [r for r in runner.runs.values() if r.process and r.process.poll() is None]
        return running if len(running) == 2 else []

    started = poll(
        both_running,
        what="both containers to start",
        timeout=20,
        interval=0.05,
        fail_if=lambda: failed_execution(
            stage.cloud.client("stepfunctions").describe_execution(executionArn=arn)
        ),
    )

    stage.cloud.client("stepfunctions").stop_execution(executionArn=arn)

    assert stage.cloud.wait_for_execution(arn, timeout=20)["status"] == "ABORTED"
    for run in started:
        assert run.done.wait(10), f"{run.kind} {run.ident} still running"
        assert run.stopped_by == "Execution stopped by user"


@pytest.mark.parametrize("kind", ["ecs", "batch"])
def test_stop_execution_stops_a_container_it_started_just_before_the_stop(
    stage: Stage, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stop lands after the container started and before the engine recorded which
    # execution started it (the window a loaded machine opens between the two).
    state = (
        _ecs_sync(["--sleep", "60"], stage)
        if kind == "ecs"
        else _batch_sync(["--sleep", "60"], stage)
    )
    machine = stage.state_machine(_one(state))
    name = f"stopped-at-start-{kind}"
    execution_arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    backend = stepfunctions_parser_backends[stage.cloud.account_id][stage.cloud.region]
    started: list[str] = []

    def start_then_stop(start: Any, container: Any) -> bool:
        result: bool = start(container)
        started.append(container.task_arn if kind == "ecs" else container.job_id)
        backend.stop_execution(execution_arn)
        return result

    start = getattr(stage.cloud, f"start_{kind}_{'task' if kind == 'ecs' else 'job'}")
    monkeypatch.setattr(
        stage.cloud,
        f"start_{kind}_{'task' if kind == 'ecs' else 'job'}",
        lambda container: start_then_stop(start, container),
    )
    died: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", died.append)

    stage.cloud.start_state_machine(machine, {}, name=name)

    assert stage.cloud.wait_for_execution(execution_arn, timeout=20)["status"] == "ABORTED"
    (ident,) = started
    runner = stage.cloud.runner
    assert runner is not None
    run = runner.runs[ident]
    assert run.done.wait(10), f"{kind} {ident} still running"
    assert run.stopped_by == "Execution stopped by user"
    time.sleep(0.2)  # moto's wait for a task token would have started (and died) by now
    assert died == []


# -- triggers ----------------------------------------------------------------------------------


def _bucket_with_rule(stage: Stage, name: str, pattern: dict[str, Any]) -> str:
    s3 = stage.cloud.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    events = stage.cloud.client("events")
    events.put_rule(Name=f"{name}-rule", EventPattern=json.dumps(pattern))
    return f"{name}-rule"


def test_s3_eventbridge_event_has_the_aws_shape(stage: Stage) -> None:
    machine = stage.state_machine(_one({"Type": "Pass", "End": True}))
    rule = _bucket_with_rule(
        stage,
        "events-shape",
        {"source": ["aws.s3"], "detail": {"bucket": {"name": ["events-shape"]}}},
    )
    stage.cloud.client("events").put_targets(
        Rule=rule, Targets=[{"Id": "sm", "Arn": machine, "RoleArn": machine}]
    )

    put = stage.cloud.client("s3").put_object(
        Bucket="events-shape", Key="in/a b+c (1).jsonl", Body=b"12345"
    )

    (execution,) = stage.cloud.iter_executions(machine)
    event = json.loads(stage.cloud.wait_for_execution(execution["executionArn"])["input"])
    assert set(event) == {
        "version", "id", "detail-type", "source", "account", "time", "region", "resources",
        "detail",
    }  # fmt: skip
    assert event["version"] == "0"
    assert event["detail-type"] == "Object Created"
    assert event["source"] == "aws.s3"
    assert event["account"] == "123456789012"
    assert event["region"] == "us-east-1"
    assert event["resources"] == ["arn:aws:s3:::events-shape"]
    assert event["time"].endswith("Z")
    assert "T" in event["time"]
    detail = event["detail"]
    assert set(detail) == {
        "version", "bucket", "object", "request-id", "requester", "source-ip-address", "reason",
    }  # fmt: skip
    assert detail["reason"] == "PutObject"
    assert detail["bucket"] == {"name": "events-shape"}
    obj = detail["object"]
    assert obj["key"] == "in/a+b%2Bc+%281%29.jsonl"  # URL-encoded like S3 notifications
    assert obj["size"] == 5
    assert obj["etag"] == put["ETag"].strip('"')
    assert obj["version-id"] == put["VersionId"]
    assert len(obj["sequencer"]) >= 16


def test_eventbridge_states_target_starts_a_named_execution(stage: Stage) -> None:
    machine = stage.state_machine(_one({"Type": "Pass", "End": True}))
    rule = _bucket_with_rule(
        stage,
        "events-start",
        {"source": ["aws.s3"], "detail": {"bucket": {"name": ["events-start"]}}},
    )
    events = stage.cloud.client("events")
    events.put_targets(Rule=rule, Targets=[{"Id": "sm", "Arn": machine, "RoleArn": machine}])

    stage.cloud.client("s3").put_object(Bucket="events-start", Key="one.json", Body=b"{}")
    stage.cloud.client("s3").put_object(Bucket="events-start", Key="two.json", Body=b"{}")

    executions = list(stage.cloud.iter_executions(machine))
    assert len(executions) == 2
    for execution in executions:
        described = stage.cloud.wait_for_execution(execution["executionArn"])
        event = json.loads(described["input"])
        assert described["name"] == event["id"]
        assert event["detail-type"] == "Object Created"


def test_eventbridge_states_target_honours_input_path_and_rule_state(stage: Stage) -> None:
    machine = stage.state_machine(_one({"Type": "Pass", "End": True}))
    rule = _bucket_with_rule(
        stage,
        "events-path",
        {"source": ["aws.s3"], "detail": {"bucket": {"name": ["events-path"]}}},
    )
    events = stage.cloud.client("events")
    events.put_targets(
        Rule=rule,
        Targets=[{"Id": "sm", "Arn": machine, "RoleArn": machine, "InputPath": "$.detail"}],
    )
    s3 = stage.cloud.client("s3")

    s3.put_object(Bucket="events-path", Key="k.json", Body=b"{}")
    events.disable_rule(Name=rule)
    s3.put_object(Bucket="events-path", Key="ignored.json", Body=b"{}")

    executions = list(stage.cloud.iter_executions(machine))
    assert len(executions) == 1
    described = stage.cloud.wait_for_execution(executions[0]["executionArn"])
    assert json.loads(described["input"])["object"]["key"] == "k.json"


def test_payload_quota_rejects_a_start_input_over_256_kib(stage: Stage) -> None:
    machine = stage.state_machine(_one({"Type": "Pass", "End": True}))
    sfn = stage.cloud.client("stepfunctions")

    with pytest.raises(sfn.exceptions.ClientError, match="262144"):
        sfn.start_execution(
            stateMachineArn=machine, name="too-big", input=json.dumps({"x": "y" * 262_144})
        )


def test_s3_eventbridge_event_once_for_multipart_and_copy(stage: Stage) -> None:
    machine = stage.state_machine(_one({"Type": "Pass", "End": True}))
    rule = _bucket_with_rule(
        stage,
        "events-composite",
        {"source": ["aws.s3"], "detail": {"bucket": {"name": ["events-composite"]}}},
    )
    stage.cloud.client("events").put_targets(
        Rule=rule, Targets=[{"Id": "sm", "Arn": machine, "RoleArn": machine}]
    )
    s3 = stage.cloud.client("s3")
    upload = s3.create_multipart_upload(Bucket="events-composite", Key="big.jsonl")
    part = s3.upload_part(
        Bucket="events-composite",
        Key="big.jsonl",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"x" * 10,
    )
    s3.complete_multipart_upload(
        Bucket="events-composite",
        Key="big.jsonl",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    s3.copy_object(
        Bucket="events-composite",
        Key="copy.jsonl",
        CopySource={"Bucket": "events-composite", "Key": "big.jsonl"},
    )

    reasons = sorted(
        json.loads(stage.cloud.wait_for_execution(e["executionArn"])["input"])["detail"]["reason"]
        for e in stage.cloud.iter_executions(machine)
    )
    assert reasons == ["CompleteMultipartUpload", "CopyObject"]


def _recordings(stage: Stage, key: str, count: int, timeout: float = 15) -> list[Any]:
    """Wait until the recorder function has received ``count`` events under ``key``."""

    def received() -> list[Any] | Pending:
        events = recorded(stage.cloud, key)
        return events if len(events) >= count else Pending(len(events))

    return poll(received, what=f"{count} event(s) recorded as {key}", timeout=timeout)


def test_eventbridge_lambda_target_invokes_the_function_with_the_event(stage: Stage) -> None:
    events = stage.cloud.client("events")
    events.put_rule(Name="to-function", EventPattern=json.dumps({"source": ["conformance.orders"]}))
    events.put_targets(Rule="to-function", Targets=[{"Id": "fn", "Arn": RECORDER_ARN}])

    answer = events.put_events(
        Entries=[
            {
                "Source": "conformance.orders",
                "DetailType": "Order Placed",
                "Detail": json.dumps({"order": 7}),
            }
        ]
    )

    assert answer["FailedEntryCount"] == 0
    event_id = answer["Entries"][0]["EventId"]
    (event,) = _recordings(stage, event_id, 1)
    assert event["id"] == event_id
    assert event["source"] == "conformance.orders"
    assert event["detail-type"] == "Order Placed"
    assert event["detail"] == {"order": 7}
    # As EventBridge delivers it: an ISO time, no ingestion time.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    assert "ingestion-time" not in event


def test_eventbridge_lambda_target_retries_a_failing_function_without_failing_the_publisher(
    stage: Stage,
) -> None:
    events = stage.cloud.client("events")
    events.put_rule(
        Name="to-failing-function", EventPattern=json.dumps({"source": ["conformance.retry"]})
    )
    events.put_targets(
        Rule="to-failing-function",
        Targets=[
            {
                "Id": "fn",
                "Arn": RECORDER_ARN,
                "InputTransformer": {
                    "InputPathsMap": {"order": "$.detail.order"},
                    "InputTemplate": (
                        '{"record_as": "retried-<order>", "order": <order>, "fail_attempts": 2}'
                    ),
                },
            }
        ],
    )

    answer = events.put_events(
        Entries=[
            {
                "Source": "conformance.retry",
                "DetailType": "Order Placed",
                "Detail": json.dumps({"order": 8}),
            }
        ]
    )

    # The function fails twice; the publisher never knows, Lambda runs it two more times
    # (after 60 s and 120 s, scaled by the stage's time_scale of 0.01).
    assert answer["FailedEntryCount"] == 0
    attempts = _recordings(stage, "retried-8", 3)
    assert [attempt["order"] for attempt in attempts] == [8, 8, 8]
    time.sleep(1.5)  # longer than any further retry would wait
    assert len(recorded(stage.cloud, "retried-8")) == 3


# -- Step Functions API ------------------------------------------------------------------------


def test_execution_name_is_a_fresh_uuid_when_none_is_given(stage: Stage) -> None:
    machine = stage.state_machine(_one({"Type": "Wait", "Seconds": 100, "End": True}))
    sfn = stage.cloud.client("stepfunctions")

    arns = [sfn.start_execution(stateMachineArn=machine)["executionArn"] for _ in range(3)]

    names = [arn.rsplit(":", 1)[1] for arn in arns]
    assert len(set(names)) == 3
    for name in names:
        assert str(uuid.UUID(name)) == name
    listed = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]}
    assert listed == set(arns)
    for arn in arns:
        sfn.stop_execution(executionArn=arn)


def test_stop_reason_reaches_the_aborted_event_and_the_history(stage: Stage) -> None:
    machine = stage.state_machine(_one({"Type": "Wait", "Seconds": 1000, "End": True}))
    url = _status_queue(
        stage, "status-aborted", {"stateMachineArn": [machine], "status": ["ABORTED"]}
    )
    arn = stage.cloud.start_state_machine(machine, {})
    poll(
        lambda: any(e["type"] == "WaitStateEntered" for e in stage.cloud.history(arn)),
        what="the execution waiting",
        timeout=10,
    )

    stopped = stage.cloud.client("stepfunctions").stop_execution(
        executionArn=arn, error="UserCancelled", cause="stopped from the conformance test"
    )

    assert stopped["stopDate"] is not None
    assert stage.cloud.wait_for_execution(arn)["status"] == "ABORTED"
    aborted = next(e for e in stage.cloud.history(arn) if e["type"] == "ExecutionAborted")
    assert aborted["executionAbortedEventDetails"] == {
        "error": "UserCancelled",
        "cause": "stopped from the conformance test",
    }
    (event,) = _queued(stage, url, 1)
    assert (event["detail"]["error"], event["detail"]["cause"]) == (
        "UserCancelled",
        "stopped from the conformance test",
    )


def test_stop_reason_stops_an_execution_the_moment_it_started(stage: Stage) -> None:
    machine = stage.state_machine(_one({"Type": "Wait", "Seconds": 1000, "End": True}))
    sfn = stage.cloud.client("stepfunctions")

    arns = []
    for _ in range(20):
        arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
        sfn.stop_execution(executionArn=arn)  # before its interpreter thread set itself up
        arns.append(arn)

    assert {stage.cloud.wait_for_execution(arn)["status"] for arn in arns} == {"ABORTED"}


def _labelled_map(**fields: Any) -> dict[str, Any]:
    """A Distributed Map labelled Fan over ``$.items``, whose items with ``bad`` fail."""
    state: dict[str, Any] = {
        "Type": "Map",
        "Label": "Fan",
        "ItemsPath": "$.items",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Check",
            "States": {
                "Check": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.bad", "BooleanEquals": True, "Next": "Bad"}],
                    "Default": "Good",
                },
                "Good": {"Type": "Pass", "End": True},
                "Bad": {"Type": "Fail", "Error": "BadItem", "Cause": "bad on purpose"},
            },
        },
        "End": True,
        **fields,
    }
    return state


def test_map_run_api_lists_describes_and_pages_the_children_like_aws(stage: Stage) -> None:
    machine = stage.state_machine(_one(_labelled_map(ToleratedFailurePercentage=50)))
    items = [{"n": n, "bad": n == 2} for n in range(4)]
    arn = stage.cloud.start_state_machine(machine, {"items": items})
    assert stage.cloud.wait_for_execution(arn)["status"] == "SUCCEEDED"
    # Through the endpoint the AWS CLI uses (moto answered ListExecutions with a 500).
    sfn = boto3.client(
        "stepfunctions", endpoint_url=stage.cloud.endpoint_url, region_name="us-east-1"
    )

    (run,) = sfn.list_map_runs(executionArn=arn)["mapRuns"]
    map_run_arn = run["mapRunArn"]
    assert run["stateMachineArn"] == f"{machine}/Fan"
    described = sfn.describe_map_run(mapRunArn=map_run_arn)
    assert described["status"] == "SUCCEEDED"
    assert described["executionCounts"]["succeeded"] == 3
    assert described["executionCounts"]["failed"] == 1
    children = sfn.list_executions(mapRunArn=map_run_arn)["executions"]
    assert len(children) == 4
    prefix = map_run_arn.replace(":mapRun:", ":execution:").rsplit(":", 1)[0]
    for child in children:
        assert child["executionArn"] == f"{prefix}:{child['name']}"
        assert child["stateMachineArn"] == f"{machine}/Fan"
        assert child["mapRunArn"] == map_run_arn
        assert child["itemCount"] == 1
        assert child["stopDate"] >= child["startDate"]
    starts = [child["startDate"] for child in children]
    assert starts == sorted(starts, reverse=True)  # the most recent first
    (failed,) = sfn.list_executions(mapRunArn=map_run_arn, statusFilter="FAILED")["executions"]
    assert failed["status"] == "FAILED"
    first = sfn.list_executions(mapRunArn=map_run_arn, maxResults=3)
    rest = sfn.list_executions(mapRunArn=map_run_arn, nextToken=first["nextToken"])
    assert len(first["executions"]) == 3
    assert "nextToken" not in rest
    paged = [c["executionArn"] for c in first["executions"] + rest["executions"]]
    assert paged == [child["executionArn"] for child in children]


def test_map_run_api_counts_the_items_of_a_batched_child(stage: Stage) -> None:
    state = _labelled_map(ItemBatcher={"MaxItemsPerBatch": 2})
    state["ItemProcessor"]["States"] = {"Good": {"Type": "Pass", "End": True}}
    state["ItemProcessor"]["StartAt"] = "Good"
    machine = stage.state_machine(_one(state))
    arn = stage.cloud.start_state_machine(machine, {"items": [{"n": n} for n in range(5)]})
    stage.cloud.wait_for_execution(arn)
    sfn = stage.cloud.client("stepfunctions")

    (run,) = sfn.list_map_runs(executionArn=arn)["mapRuns"]
    children = sfn.list_executions(mapRunArn=run["mapRunArn"])["executions"]

    assert sorted(child["itemCount"] for child in children) == [1, 2, 2]


def test_map_run_api_answers_errors_like_aws(stage: Stage) -> None:
    sfn = boto3.client(
        "stepfunctions", endpoint_url=stage.cloud.endpoint_url, region_name="us-east-1"
    )
    unknown = "arn:aws:states:us-east-1:123456789012:mapRun:nowhere/Fan:0000"
    machine = stage.state_machine(_one({"Type": "Pass", "End": True}))

    with pytest.raises(ClientError) as described:
        sfn.describe_map_run(mapRunArn=unknown)
    with pytest.raises(ClientError) as listed:
        sfn.list_executions(mapRunArn=unknown)
    with pytest.raises(ClientError) as both:
        sfn.list_executions(mapRunArn=unknown, stateMachineArn=machine)

    assert described.value.response["Error"]["Code"] == "ResourceNotFound"
    assert listed.value.response["Error"]["Code"] == "ResourceNotFound"
    assert both.value.response["Error"]["Code"] == "ValidationException"


# -- Step Functions status-change events -------------------------------------------------------


def _status_queue(stage: Stage, name: str, detail: dict[str, Any]) -> str:
    """A queue that receives the status-change events a rule with ``detail`` matches."""
    sqs = stage.cloud.client("sqs")
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": detail,
    }
    events = stage.cloud.client("events")
    events.put_rule(Name=f"{name}-rule", EventPattern=json.dumps(pattern))
    events.put_targets(Rule=f"{name}-rule", Targets=[{"Id": "queue", "Arn": arn}])
    return url


def _queued(stage: Stage, url: str, count: int) -> list[dict[str, Any]]:
    """Wait for ``count`` events on the queue; then check that no other arrives."""
    sqs = stage.cloud.client("sqs")
    got: list[dict[str, Any]] = []

    def receive() -> list[dict[str, Any]] | Pending:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            got.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return got if len(got) >= count else Pending([e["detail"]["status"] for e in got])

    if count:
        poll(receive, what=f"{count} status change event(s)", timeout=15, interval=0.05)
    receive()
    assert len(got) == count, [event["detail"]["status"] for event in got]
    return got


def _by_status(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {event["detail"]["status"]: event for event in events}


def _millis(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def test_execution_status_events_mark_the_start_and_the_end_of_an_execution(
    stage: Stage,
) -> None:
    machine = stage.state_machine(_one({"Type": "Pass", "Result": {"done": True}, "End": True}))
    url = _status_queue(stage, "status-succeeded", {"stateMachineArn": [machine]})

    arn = stage.cloud.start_state_machine(machine, {"job": "a"}, name="status-one")
    described = stage.cloud.wait_for_execution(arn)

    events = _by_status(_queued(stage, url, 2))
    assert set(events) == {"RUNNING", "SUCCEEDED"}
    for event in events.values():
        assert event["source"] == "aws.states"
        assert event["detail-type"] == "Step Functions Execution Status Change"
        assert (event["account"], event["region"]) == ("123456789012", "us-east-1")
        assert event["resources"] == [arn]
        assert event["time"].endswith("Z")
        detail = event["detail"]
        assert set(detail) == {
            "executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate",
            "input", "inputDetails", "output", "outputDetails", "error", "cause",
            "redriveCount", "redriveDate", "redriveStatus", "redriveStatusReason",
        }  # fmt: skip
        assert (detail["executionArn"], detail["stateMachineArn"]) == (arn, machine)
        assert detail["name"] == "status-one"
        assert json.loads(detail["input"]) == {"job": "a"}
        assert detail["inputDetails"] == {"included": True}
        assert detail["startDate"] == _millis(described["startDate"])
        assert (detail["error"], detail["cause"]) == (None, None)
    running, succeeded = events["RUNNING"]["detail"], events["SUCCEEDED"]["detail"]
    assert (running["stopDate"], running["output"], running["outputDetails"]) == (None, None, None)
    assert succeeded["stopDate"] == _millis(described["stopDate"])
    assert json.loads(succeeded["output"]) == {"done": True}
    assert succeeded["outputDetails"] == {"included": True}


def test_execution_status_events_carry_the_error_of_a_failed_execution(stage: Stage) -> None:
    machine = stage.state_machine(_one({"Type": "Fail", "Error": "Boom", "Cause": "bad input"}))
    url = _status_queue(
        stage, "status-failed", {"stateMachineArn": [machine], "status": ["FAILED"]}
    )

    arn = stage.cloud.start_state_machine(machine, {})
    stage.cloud.wait_for_execution(arn)

    (failed,) = _queued(stage, url, 1)
    assert failed["detail"]["executionArn"] == arn
    assert (failed["detail"]["error"], failed["detail"]["cause"]) == ("Boom", "bad input")
    assert failed["detail"]["output"] is None
    assert failed["detail"]["redriveStatus"] == "REDRIVABLE"


def test_execution_status_events_for_a_timed_out_execution(stage: Stage) -> None:
    definition = {**_one({"Type": "Wait", "Seconds": 1000, "End": True}), "TimeoutSeconds": 1}
    machine = stage.state_machine(definition)
    url = _status_queue(stage, "status-timed-out", {"stateMachineArn": [machine]})

    arn = stage.cloud.start_state_machine(machine, {})
    assert stage.cloud.wait_for_execution(arn, timeout=20)["status"] == "TIMED_OUT"

    events = _by_status(_queued(stage, url, 2))
    assert set(events) == {"RUNNING", "TIMED_OUT"}
    assert events["TIMED_OUT"]["detail"]["stopDate"] is not None


def test_execution_status_events_reach_a_lambda_target(stage: Stage) -> None:
    machine = stage.state_machine(_one({"Type": "Fail", "Error": "Boom", "Cause": "bad"}))
    pattern = {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [machine], "status": ["FAILED", "TIMED_OUT", "ABORTED"]},
    }
    events = stage.cloud.client("events")
    events.put_rule(Name="ended-to-function", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="ended-to-function", Targets=[{"Id": "fn", "Arn": RECORDER_ARN}])

    arn = stage.cloud.start_state_machine(machine, {"run": 1})
    stage.cloud.wait_for_execution(arn)

    def ended_event() -> dict[str, Any] | None:
        s3 = stage.cloud.client("s3")
        for entry in s3.list_objects_v2(Bucket="conformance-received").get("Contents", []):
            body = json.loads(
                s3.get_object(Bucket="conformance-received", Key=entry["Key"])["Body"].read()
            )
            if body.get("detail", {}).get("executionArn") == arn:
                return dict(body)
        return None

    event = poll(ended_event, what="the FAILED event at the function", timeout=15)
    assert event["detail"]["status"] == "FAILED"
    assert json.loads(event["detail"]["input"]) == {"run": 1}


def test_execution_status_events_for_distributed_map_children_of_type_standard(
    stage: Stage,
) -> None:
    def fan(label: str, execution_type: str) -> dict[str, Any]:
        return {
            "Type": "Map",
            "Label": label,
            "ItemsPath": "$.items",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
                "StartAt": "Echo",
                "States": {"Echo": {"Type": "Pass", "End": True}},
            },
            "ResultPath": None,
        }

    definition = {
        "StartAt": "Standard",
        "States": {
            "Standard": {**fan("Standard", "STANDARD"), "Next": "Express"},
            "Express": {**fan("Express", "EXPRESS"), "End": True},
        },
    }
    machine = stage.state_machine(definition)
    standard_url = _status_queue(
        stage, "status-standard-children", {"stateMachineArn": [f"{machine}/Standard"]}
    )
    express_url = _status_queue(
        stage, "status-express-children", {"stateMachineArn": [f"{machine}/Express"]}
    )

    arn = stage.cloud.start_state_machine(machine, {"items": [{"n": 1}, {"n": 2}, {"n": 3}]})
    assert stage.cloud.wait_for_execution(arn)["status"] == "SUCCEEDED"

    events = _queued(stage, standard_url, 6)
    sfn = stage.cloud.client("stepfunctions")
    (standard_run, _) = sorted(
        sfn.list_map_runs(executionArn=arn)["mapRuns"], key=lambda run: run["stateMachineArn"]
    )[::-1]
    children = sfn.list_executions(mapRunArn=standard_run["mapRunArn"])["executions"]
    ended = {e["detail"]["executionArn"]: e["detail"] for e in events if e["detail"]["stopDate"]}
    assert set(ended) == {child["executionArn"] for child in children}
    assert sorted(json.loads(detail["output"])["n"] for detail in ended.values()) == [1, 2, 3]
    assert sorted(e["detail"]["status"] for e in events) == ["RUNNING"] * 3 + ["SUCCEEDED"] * 3
    _queued(stage, express_url, 0)  # EXPRESS children send none


def test_execution_status_events_none_for_an_express_state_machine(stage: Stage) -> None:
    machine = stage.cloud.client("stepfunctions").create_state_machine(
        name="express-conformance",
        definition=json.dumps(_one({"Type": "Pass", "End": True})),
        roleArn="arn:aws:iam::123456789012:role/conformance",
        type="EXPRESS",
    )["stateMachineArn"]
    url = _status_queue(stage, "status-express", {"stateMachineArn": [machine]})

    arn = stage.cloud.start_state_machine(machine, {})
    stage.cloud.wait_for_execution(arn)

    _queued(stage, url, 0)


# -- DynamoDB ----------------------------------------------------------------------------------


def test_dynamodb_atomic_items_reads_beside_writes_and_counts_every_add(stage: Stage) -> None:
    ddb = stage.cloud.client("dynamodb")
    _ledger_like_table(ddb, "concurrent")
    errors: list[str] = []
    claims: list[str] = []
    writing = threading.Event()
    writing.set()

    def write(writer: int) -> None:
        for index in range(60):
            try:
                # A new sort key in a partition being read, and a new partition.
                ddb.put_item(
                    TableName="concurrent",
                    Item={"pk": {"S": "run"}, "sk": {"S": f"{writer}-{index:03d}"}},
                )
                ddb.put_item(
                    TableName="concurrent",
                    Item={"pk": {"S": f"run-{writer}-{index}"}, "sk": {"S": "run"}},
                )
                ddb.update_item(
                    TableName="concurrent",
                    Key={"pk": {"S": "counter"}, "sk": {"S": "counter"}},
                    UpdateExpression="ADD done :one",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
                ddb.put_item(
                    TableName="concurrent",
                    Item={"pk": {"S": "claim"}, "sk": {"S": str(index)}},
                    ConditionExpression="attribute_not_exists(pk)",
                )
                claims.append(str(index))
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    errors.append(str(error))
            except Exception as error:  # what a 500 becomes in-process
                errors.append(repr(error))

    def read() -> None:
        while writing.is_set():
            try:
                ddb.query(
                    TableName="concurrent",
                    KeyConditionExpression="pk = :pk",
                    ExpressionAttributeValues={":pk": {"S": "run"}},
                )
                ddb.scan(TableName="concurrent", Limit=20)
            except Exception as error:
                errors.append(repr(error))

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, as a loaded machine does
    try:
        writers = [threading.Thread(target=write, args=(w,)) for w in range(3)]
        readers = [threading.Thread(target=read) for _ in range(2)]
        for thread in writers + readers:
            thread.start()
        for thread in writers:
            thread.join(timeout=120)
        writing.clear()
        for thread in readers:
            thread.join(timeout=30)
    finally:
        sys.setswitchinterval(switch_interval)

    assert errors == []
    counter = ddb.get_item(
        TableName="concurrent", Key={"pk": {"S": "counter"}, "sk": {"S": "counter"}}
    )
    assert counter["Item"]["done"]["N"] == str(3 * 60)
    assert sorted(claims, key=int) == [str(index) for index in range(60)]  # one winner each


def test_dynamodb_throttling_answers_an_armed_throttle_then_disarms(stage: Stage) -> None:
    # No SDK retries: each call meets the fault once.
    ddb = boto3.client(
        "dynamodb", region_name=stage.cloud.region, config=Config(retries={"total_max_attempts": 1})
    )
    ddb.create_table(
        TableName="throttled",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    stage.cloud.faults.dynamodb_throttle(times=1, operation="PutItem")
    stage.cloud.faults.dynamodb_throttle(times=1, code="ThrottlingException")

    item = {"pk": {"S": "one"}}
    with pytest.raises(ClientError) as throttled:
        ddb.put_item(TableName="throttled", Item=item)
    assert throttled.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as again:
        ddb.get_item(TableName="throttled", Key=item)
    assert again.value.response["Error"]["Code"] == "ThrottlingException"

    ddb.put_item(TableName="throttled", Item=item)
    assert ddb.get_item(TableName="throttled", Key=item)["Item"] == item
    assert stage.cloud.faults.fired["dynamodb_throttle"] == 2


def test_sdk_retry_time_scales_botocores_backoff_and_rate_limiter(stage: Stage) -> None:
    # The product's retry configuration: adaptive, 10 retries (waits of up to 20 s each).
    ddb = boto3.client(
        "dynamodb",
        region_name=stage.cloud.region,
        config=Config(retries={"mode": "adaptive", "max_attempts": 10}),
    )
    ddb.create_table(
        TableName="retried",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    item = {"pk": {"S": "one"}}
    stage.cloud.faults.dynamodb_throttle(times=10)
    started = time.monotonic()

    ddb.put_item(TableName="retried", Item=item)
    # After throttling the rate limiter meters every call (at least 0.5 a second unscaled).
    for _ in range(20):
        assert ddb.get_item(TableName="retried", Key=item)["Item"] == item

    # Unscaled: about 65 s of backoff on average, then up to 40 s of rate limiting.
    assert time.monotonic() - started < 5
    assert stage.cloud.faults.fired["dynamodb_throttle"] == 10
    stage.cloud.faults.dynamodb_throttle(times=11)
    with pytest.raises(ClientError) as exhausted:
        ddb.get_item(TableName="retried", Key=item)
    assert exhausted.value.response["ResponseMetadata"]["RetryAttempts"] == 10


def test_sdk_retry_waits_after_no_answer_stay_real(stage: Stage) -> None:
    backoff = ExponentialBackoff(random=lambda: 1.0)
    # The third attempt's wait: 50 ms * 2 ** 2 unscaled, for any error that is not throttling.
    answered = RetryContext(attempt_number=3, parsed_response={"Error": {"Code": "InternalError"}})
    unanswered = RetryContext(
        attempt_number=3, caught_exception=ConnectTimeoutError(endpoint_url="http://127.0.0.1")
    )

    assert backoff.delay_amount(answered) == pytest.approx(0.2 * 0.01)  # the stage's time_scale
    assert backoff.delay_amount(unanswered) == pytest.approx(0.2)


@pytest.mark.parametrize("kind", ["SlowDown", "InternalError", "truncated"])
def test_s3_range_faults_fail_one_ranged_get_then_disarm(stage: Stage, kind: str) -> None:
    # No SDK retries: each call meets the fault once.
    s3 = boto3.client(
        "s3", region_name=stage.cloud.region, config=Config(retries={"total_max_attempts": 1})
    )
    s3.create_bucket(Bucket="ranged")
    body = bytes(range(256)) * 64
    s3.put_object(Bucket="ranged", Key="data/object.bin", Body=body)
    stage.cloud.faults.s3_range_failure(times=1, kind=kind, key_contains="data/object")

    # A GET without a range is never failed.
    assert s3.get_object(Bucket="ranged", Key="data/object.bin")["Body"].read() == body
    failure: type[Exception] = ClientError if kind != "truncated" else IncompleteReadError
    with pytest.raises(failure):
        s3.get_object(Bucket="ranged", Key="data/object.bin", Range="bytes=100-9099")["Body"].read()
    ranged = s3.get_object(Bucket="ranged", Key="data/object.bin", Range="bytes=100-9099")
    assert ranged["Body"].read() == body[100:9100]
    assert stage.cloud.faults.fired["s3_range_failure"] == 1


def _all_pages(ddb: Any, **query: Any) -> list[str]:
    keys: list[str] = []
    while True:
        page = ddb.query(TableName="partitions", **query)
        keys += [item["sk"]["S"] for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return keys
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_dynamodb_partition_query_reads_one_partition_page_by_page(stage: Stage) -> None:
    ddb = stage.cloud.client("dynamodb")
    _ledger_like_table(ddb, "partitions")
    # Two runs' partitions interleaved, written out of order, with items big enough that
    # 1 MB pages end before the partition does.
    padding = "x" * 20_000
    written: dict[str, list[str]] = {"RUN#a": [], "RUN#b": []}
    for index in reversed(range(120)):
        for pk, keys in written.items():
            sk = f"ITEM#{index:05d}" if index % 4 else f"UNIT#{index:05d}"
            ddb.put_item(
                TableName="partitions",
                Item={"pk": {"S": pk}, "sk": {"S": sk}, "pad": {"S": padding}},
            )
            keys.append(sk)
    expected = sorted(written["RUN#a"])
    key = {"KeyConditionExpression": "pk = :pk"}

    everything = _all_pages(ddb, **key, ExpressionAttributeValues={":pk": {"S": "RUN#a"}})
    limited = _all_pages(ddb, **key, ExpressionAttributeValues={":pk": {"S": "RUN#a"}}, Limit=7)
    units = _all_pages(
        ddb,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={":pk": {"S": "RUN#a"}, ":prefix": {"S": "UNIT#"}},
        Limit=4,
    )
    backwards = _all_pages(
        ddb, **key, ExpressionAttributeValues={":pk": {"S": "RUN#a"}}, ScanIndexForward=False
    )
    between = _all_pages(
        ddb,
        KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
        ExpressionAttributeValues={
            ":pk": {"S": "RUN#b"},
            ":low": {"S": "ITEM#00010"},
            ":high": {"S": "ITEM#00020"},
        },
    )
    missing = _all_pages(ddb, **key, ExpressionAttributeValues={":pk": {"S": "RUN#c"}})

    assert everything == expected
    assert limited == expected
    assert units == [sk for sk in expected if sk.startswith("UNIT#")]
    assert backwards == expected[::-1]
    assert between == [sk for sk in sorted(written["RUN#b"]) if "ITEM#00010" <= sk <= "ITEM#00020"]
    assert missing == []
    # A write between pages is seen by the next page, as on AWS.
    first = ddb.query(
        TableName="partitions",
        **key,
        ExpressionAttributeValues={":pk": {"S": "RUN#a"}},
        Limit=2,
    )
    ddb.put_item(TableName="partitions", Item={"pk": {"S": "RUN#a"}, "sk": {"S": "ITEM#00077a"}})
    rest = _all_pages(
        ddb,
        **key,
        ExpressionAttributeValues={":pk": {"S": "RUN#a"}},
        ExclusiveStartKey=first["LastEvaluatedKey"],
    )
    assert [i["sk"]["S"] for i in first["Items"]] + rest == sorted([*expected, "ITEM#00077a"])


def _ledger_like_table(ddb: Any, name: str) -> None:
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )


def test_dynamodb_wire_values_answers_every_attribute_type_as_written(stage: Stage) -> None:
    ddb = stage.cloud.client("dynamodb")
    _ledger_like_table(ddb, "wire")
    item = {
        "pk": {"S": "RUN#a"},
        "sk": {"S": "ITEM#1"},
        "text": {"S": ""},
        "number": {"N": "-12.5"},
        "flag": {"BOOL": False},
        "nothing": {"NULL": True},
        "names": {"SS": ["a", "b"]},
        "numbers": {"NS": ["1", "2.5"]},
        "nested": {"M": {"list": {"L": [{"S": "x"}, {"N": "3"}, {"M": {}}, {"L": []}]}}},
        "blob": {"B": b"\x00\xffbytes"},
        "blobs": {"BS": [b"\x01", b"\x02"]},
    }
    plain = {name: value for name, value in item.items() if name not in {"blob", "blobs"}}
    ddb.put_item(TableName="wire", Item=item)
    ddb.put_item(TableName="wire", Item={**plain, "sk": {"S": "ITEM#2"}})
    key = {"pk": item["pk"], "sk": item["sk"]}

    got = ddb.get_item(TableName="wire", Key=key, ConsistentRead=True)["Item"]
    batch = ddb.batch_get_item(
        RequestItems={"wire": {"Keys": [key, {**key, "sk": {"S": "ITEM#2"}}]}}
    )["Responses"]["wire"]
    queried = ddb.query(
        TableName="wire",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "RUN#a"}},
    )
    old = ddb.put_item(TableName="wire", Item=plain, ReturnValues="ALL_OLD")["Attributes"]

    assert got == item
    assert sorted(batch, key=lambda each: each["sk"]["S"]) == [
        item,
        {**plain, "sk": {"S": "ITEM#2"}},
    ]
    assert queried["Items"] == [item, {**plain, "sk": {"S": "ITEM#2"}}]
    assert old == item


def test_dynamodb_transaction_backup_puts_back_a_cancelled_transactions_items(
    stage: Stage,
) -> None:
    ddb = stage.cloud.client("dynamodb")
    _ledger_like_table(ddb, "ledger")

    def record(sk: str, **values: str) -> dict[str, Any]:
        return {"pk": {"S": "RUN#a"}, "sk": {"S": sk}, **{k: {"S": v} for k, v in values.items()}}

    ddb.put_item(TableName="ledger", Item=record("ITEM#1", status="RUNNING"))
    ddb.put_item(TableName="ledger", Item=record("ITEM#2", status="CANCELLED"))
    ddb.put_item(TableName="ledger", Item=record("ITEM#3", status="RUNNING"))
    ddb.put_item(TableName="ledger", Item={**record("COUNTER"), "done": {"N": "1"}})
    unless_cancelled = {
        "TableName": "ledger",
        "ConditionExpression": "attribute_not_exists(#status) OR #status <> :cancelled",
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": {":cancelled": {"S": "CANCELLED"}},
    }

    def stored() -> list[dict[str, Any]]:
        items = ddb.scan(TableName="ledger", ConsistentRead=True)["Items"]
        return sorted(items, key=lambda each: each["sk"]["S"])

    before = stored()
    actions = [
        {"Put": {**unless_cancelled, "Item": record("ITEM#1", status="SUCCEEDED")}},
        {"Put": {**unless_cancelled, "Item": record("ITEM#2", status="SUCCEEDED")}},
        {"Put": {**unless_cancelled, "Item": record("ITEM#4", status="SUCCEEDED")}},
        {
            "Update": {
                "TableName": "ledger",
                "Key": {"pk": {"S": "RUN#a"}, "sk": {"S": "COUNTER"}},
                "UpdateExpression": "ADD done :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
        {"Delete": {"TableName": "ledger", "Key": {"pk": {"S": "RUN#a"}, "sk": {"S": "ITEM#3"}}}},
    ]

    with pytest.raises(ClientError) as cancelled:
        ddb.transact_write_items(TransactItems=actions)
    after_cancel = stored()
    # Without the refused record, the rest goes through.
    ddb.transact_write_items(TransactItems=[actions[0], *actions[2:]])
    after = {each["sk"]["S"]: each for each in stored()}

    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [reason["Code"] for reason in cancelled.value.response["CancellationReasons"]] == [
        "None",
        "ConditionalCheckFailed",
        "None",
        "None",
        "None",
    ]
    assert after_cancel == before  # every item as it was: written, added to, deleted, new
    assert after["ITEM#1"]["status"] == {"S": "SUCCEEDED"}
    assert after["ITEM#2"]["status"] == {"S": "CANCELLED"}
    assert after["ITEM#4"]["status"] == {"S": "SUCCEEDED"}
    assert after["COUNTER"]["done"] == {"N": "2"}
    assert "ITEM#3" not in after


def test_dynamodb_parsed_expressions_answer_each_names_and_values_of_one_expression(
    stage: Stage,
) -> None:
    ddb = stage.cloud.client("dynamodb")
    _ledger_like_table(ddb, "conditions")
    key = {"pk": {"S": "RUN#a"}, "sk": {"S": "ITEM#1"}}
    ddb.put_item(
        TableName="conditions", Item={**key, "status": {"S": "CANCELLED"}, "n": {"N": "2"}}
    )
    condition = "attribute_not_exists(#f) OR #f <> :v"

    def written(names: dict[str, str], value: dict[str, str]) -> str:
        try:
            ddb.update_item(
                TableName="conditions",
                Key=key,
                UpdateExpression="SET touched = :t",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":v": value, ":t": {"BOOL": True}},
            )
        except ClientError as error:
            return "refused" if error.response["Error"]["Code"].startswith("Conditional") else "?"
        return "written"

    outcomes = [
        written({"#f": "status"}, {"S": "CANCELLED"}),  # the stored value: refused
        written({"#f": "status"}, {"S": "CANCELLED"}),  # again, from the parsed tree
        written({"#f": "status"}, {"S": "RUNNING"}),  # other values: written
        written({"#f": "n"}, {"N": "2"}),  # other names: refused
        written({"#f": "n"}, {"N": "2.0"}),  # the same number: refused
        written({"#f": "missing"}, {"S": "CANCELLED"}),  # no such attribute: written
    ]
    assert outcomes == ["refused", "refused", "written", "refused", "refused", "written"]


def test_dynamodb_item_size_refuses_an_item_past_400_kb_and_keeps_the_rest(stage: Stage) -> None:
    ddb = stage.cloud.client("dynamodb")
    _ledger_like_table(ddb, "sizes")
    key = {"pk": {"S": "RUN#a"}, "sk": {"S": "ITEM#1"}}
    # Many attributes (what the size check re-measured), together just under the limit.
    fits = {**key, **{f"a{i:02d}": {"S": "x" * 9_000} for i in range(44)}, "n": {"N": "1.5"}}
    too_big = {**fits, "extra": {"S": "x" * 10_000}}

    ddb.put_item(TableName="sizes", Item=fits)
    with pytest.raises(ClientError) as refused:
        ddb.put_item(TableName="sizes", Item=too_big)
    stored = ddb.get_item(TableName="sizes", Key=key, ConsistentRead=True)["Item"]

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "size" in refused.value.response["Error"]["Message"]
    assert stored == fits


def test_models_shared_between_sessions_parses_each_model_once(stage: Stage) -> None:
    first = boto3.session.Session(region_name="us-east-1")
    second = boto3.session.Session(region_name="us-east-1")
    load = "load_service_model"

    model = getattr(first._loader, load)("sqs", "service-2")

    assert getattr(second._loader, load)("sqs", "service-2") is model
    assert first._loader.load_data("endpoints") is second._loader.load_data("endpoints")
    # What a client is built from is still botocore's model, with its extras merged in.
    assert second.client("sqs").meta.service_model.service_name == "sqs"
    assert "ListQueues" in model["operations"]


def test_client_cache_keeps_the_interpreter_in_process_after_a_function_set_the_endpoint(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the in-process handlers leave in the environment for their own subprocesses.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    clients.forget_clients()

    described, _ = stage.run(_s3_listing(stage))

    assert described["status"] == "SUCCEEDED"
    assert not clients.client("us-east-1", "s3").meta.endpoint_url.startswith("http://127.")


def test_backend_lookup_finds_existing_backends_and_creates_new_ones(stage: Stage) -> None:
    from stepburst_local.moto_internals import BackendDict, ecs_backends

    existing = ecs_backends[stage.cloud.account_id]
    assert ecs_backends[stage.cloud.account_id] is existing
    # Another account's backend is created, registered for reset, and kept apart.
    other = ecs_backends["210987654321"]["us-east-1"]
    other.create_cluster("other-account-cluster")
    assert "other-account-cluster" in other.clusters
    assert "other-account-cluster" not in existing["us-east-1"].clusters
    assert ecs_backends in BackendDict._instances


# -- S3 object bodies --------------------------------------------------------------------------


class _CountingBuffer:
    """A stored value's spooled file that counts the bytes read from it."""

    def __init__(self, buffer: Any) -> None:
        self._buffer = buffer
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._buffer.read(size)
        self.bytes_read += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._buffer, name)


def _http_s3(stage: Stage) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=stage.cloud.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.mark.parametrize("over_http", [False, True], ids=["in-process", "http"])
def test_s3_object_bodies_ranged_get_reads_only_its_range(
    stage: Stage, over_http: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepburst_local.moto_internals import s3_backends

    s3 = _http_s3(stage) if over_http else stage.cloud.client("s3")
    s3.create_bucket(Bucket="ranged-bodies")
    body = bytes(range(256)) * 40_000  # 10 MB: past the spool's memory, on disk
    s3.put_object(Bucket="ranged-bodies", Key="big", Body=body)
    key = s3_backends[stage.cloud.account_id]["aws"].get_object("ranged-bodies", "big")
    counting = _CountingBuffer(key._value_buffer)
    monkeypatch.setattr(key, "_value_buffer", counting)

    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html (Range, RFC 9110)
    cases = {
        "bytes=1000-1999": (1000, 1999),
        "bytes=9999000-": (9_999_000, len(body) - 1),
        "bytes=-500": (len(body) - 500, len(body) - 1),
        "bytes=9999990-20000000": (9_999_990, len(body) - 1),
    }
    for header, (first, last) in cases.items():
        got = s3.get_object(Bucket="ranged-bodies", Key="big", Range=header)
        assert got["Body"].read() == body[first : last + 1], header
        assert got["ContentRange"] == f"bytes {first}-{last}/{len(body)}", header
        assert got["ContentLength"] == last - first + 1, header
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert counting.bytes_read == sum(last - first + 1 for first, last in cases.values())

    with pytest.raises(ClientError) as past_the_end:
        s3.get_object(Bucket="ranged-bodies", Key="big", Range=f"bytes={len(body)}-")
    assert past_the_end.value.response["Error"]["Code"] == "InvalidRange"
    whole = s3.get_object(Bucket="ranged-bodies", Key="big")
    assert whole["Body"].read() == body
    assert whole["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_s3_object_bodies_uploads_round_trip_and_large_values_go_to_disk(stage: Stage) -> None:
    from stepburst_local.moto_internals import S3Response, s3_backends

    s3 = stage.cloud.client("s3")  # in-process: botocore sends checksummed bodies aws-chunked
    s3.create_bucket(Bucket="upload-bodies")
    body = os.urandom(6 * 1024 * 1024 + 17)
    s3.put_object(Bucket="upload-bodies", Key="whole", Body=body)
    upload = s3.create_multipart_upload(Bucket="upload-bodies", Key="parts")["UploadId"]
    parts = []
    for number, offset in enumerate(range(0, len(body), 5 * 1024 * 1024), start=1):
        piece = body[offset : offset + 5 * 1024 * 1024]
        answer = s3.upload_part(
            Bucket="upload-bodies", Key="parts", UploadId=upload, PartNumber=number, Body=piece
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3.complete_multipart_upload(
        Bucket="upload-bodies", Key="parts", UploadId=upload, MultipartUpload={"Parts": parts}
    )

    for name in ("whole", "parts"):
        assert s3.get_object(Bucket="upload-bodies", Key=name)["Body"].read() == body
        stored = s3_backends[stage.cloud.account_id]["aws"].get_object("upload-bodies", name)
        assert stored.size == len(body)
        assert stored._value_buffer._rolled  # past the spool's memory limit: on disk
    chunked = b"3;chunk-signature=ab\r\nabc\r\n2\r\nde\r\n0\r\nx-amz-checksum-crc32:AA==\r\n\r\n"
    assert S3Response._handle_encoded_body(None, chunked) == b"abcde"


# -- the interpreter's threads and ids ---------------------------------------------------------


def test_interpreter_threads_released_after_executions(stage: Stage) -> None:
    from stepburst_local.moto_internals import TMP_THREADS_IMPORTERS

    described, _ = stage.run(_one(_lambda_task({"action": "echo"}, TimeoutSeconds=30)))

    assert described["status"] == "SUCCEEDED"
    held = {id(module.TMP_THREADS) for module in TMP_THREADS_IMPORTERS}
    assert len(held) == 1
    assert list(TMP_THREADS_IMPORTERS[0].TMP_THREADS) == []


def test_invocation_ids_are_random_uuids_drawn_without_a_system_call(stage: Stage) -> None:
    from botocore import endpoint

    from stepburst_local import ids

    seen: list[bytes] = []
    s3 = stage.cloud.client("s3")
    s3.meta.events.register(
        "before-send.s3.ListBuckets",
        lambda request, **_: seen.append(request.headers["amz-sdk-invocation-id"]),
    )
    s3.list_buckets()
    s3.list_buckets()

    assert endpoint.uuid.uuid4 is ids.uuid4
    assert len(set(seen)) == 2
    assert all(uuid.UUID(value.decode()).version == 4 for value in seen)
