"""A template's rule on Step Functions status changes reaches its Lambda function on the engine.

The stack's own rule of this kind (a function's EventBridgeRule event on the coordinator's
ends) goes through the same path: SAM's function event becomes a rule whose target is the
function, the execution's end sends its status-change event to the default bus, and the rule
invokes the function asynchronously.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.polling import Pending, poll

from stepburst_local import LocalEngine

pytestmark = pytest.mark.engine

RECORDER = Path(__file__).resolve().parent / "recorder"

TEMPLATE = f"""
Transform: AWS::Serverless-2016-10-31
Resources:
  Received:
    Type: AWS::S3::Bucket
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: !Sub "${{AWS::StackName}}-machine"
      DefinitionUri: machine.asl.json
  Watcher:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {RECORDER}
      Runtime: python3.11
      Handler: app.lambda_handler
      Environment:
        Variables:
          RECORD_BUCKET: !Ref Received
      Events:
        Ended:
          Type: EventBridgeRule
          Properties:
            RuleName: !Sub "${{AWS::StackName}}-ended"
            Pattern:
              source: [aws.states]
              detail-type: [Step Functions Execution Status Change]
              detail:
                status: [FAILED, TIMED_OUT, ABORTED]
                stateMachineArn: [!Ref Machine]
            InputTransformer:
              InputPathsMap:
                name: $.detail.name
                status: $.detail.status
                error: $.detail.error
                cause: $.detail.cause
              InputTemplate: >-
                {{"record_as": "<name>", "status": "<status>", "error": "<error>",
                "cause": "<cause>"}}
Outputs:
  ReceivedBucketName:
    Value: !Ref Received
"""

DEFINITION = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": True}}}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEngine]:
    project = tmp_path_factory.mktemp("events-project")
    (project / "template.yaml").write_text(TEMPLATE)
    (project / "machine.asl.json").write_text(json.dumps(DEFINITION))
    with LocalEngine(project, stack_name="events", time_scale=0.01, quiet=True) as running:
        yield running


def _received(engine: LocalEngine, key: str) -> list[Any] | Pending:
    s3 = engine.client("s3")
    bucket = engine.outputs["ReceivedBucketName"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"received/{key}/").get("Contents", [])
    bodies = [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listed]
    return bodies or Pending(bodies)


def test_a_stopped_execution_reaches_the_function_of_a_rule_on_status_changes(
    engine: LocalEngine,
) -> None:
    arn = engine.start_execution({"run": "r-1"}, name="stopped-run")
    poll(
        lambda: any(e["type"] == "WaitStateEntered" for e in engine.history(arn)),
        what="the execution waiting",
        timeout=10,
    )

    engine.client("stepfunctions").stop_execution(
        executionArn=arn, error="Cancelled", cause="stopped by its user"
    )

    assert engine.wait_for_execution(arn)["status"] == "ABORTED"
    (event,) = poll(
        lambda: _received(engine, "stopped-run"), what="the function's invocation", timeout=15
    )
    assert event == {
        "record_as": "stopped-run",
        "status": "ABORTED",
        "error": "Cancelled",
        "cause": "stopped by its user",
    }
