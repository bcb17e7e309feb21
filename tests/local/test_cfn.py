"""Template reading: short forms, SAM's translation, intrinsics, physical names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stepburst_local.cfn import Stack, TemplateError, load_template, substitute_definition

pytestmark = pytest.mark.engine

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: dev
  Subnets:
    Type: CommaDelimitedList
    Default: ""
  Size:
    Type: Number
    Default: 3
Mappings:
  Sizes:
    dev: {memory: 512}
    prod: {memory: 2048}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NoSubnets: !Equals [!Join ["", !Ref Subnets], ""]
  Both: !And [!Condition NoSubnets, !Not [!Condition IsProd]]
Globals:
  Function:
    Timeout: 30
    Runtime: python3.11
    Environment:
      Variables:
        TABLE: !Ref Table
        SHARED: global
Resources:
  Bucket:
    Type: AWS::S3::Bucket
  Named:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${AWS::StackName}-named-${Stage}"
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Join ["-", [!Ref "AWS::StackName", ledger]]
  OnlyInProd:
    Type: AWS::SQS::Queue
    Condition: IsProd
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/fn/
      Handler: app.handler
      MemorySize: !FindInMap [Sizes, !Ref Stage, memory]
      Environment:
        Variables:
          SHARED: own
          BUCKET_ARN: !GetAtt Bucket.Arn
          LONG: !Sub
            - "${Name}/${Other}/${!Literal}"
            - Name: !Ref Named
              Other: !Select [1, !Split [",", "a,b,c"]]
          MAYBE: !If [IsProd, prod-only, !Ref "AWS::NoValue"]
          BOTH: !If [Both, both, neither]
      Policies:
        - DynamoDBCrudPolicy:
            TableName: !Ref Table
      Events:
        Ended:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.states]
              detail:
                stateMachineArn: [!Ref Machine]
            RetryPolicy:
              MaximumRetryAttempts: 3
        Queued:
          Type: SQS
          Properties:
            Queue: arn:aws:sqs:us-east-1:123456789012:elsewhere
  FnLogs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/aws/lambda/${Fn}"
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: !Sub "${AWS::StackName}-machine"
      DefinitionUri: machine.asl.json
      DefinitionSubstitutions:
        FnArn: !GetAtt Fn.Arn
        TableName: !Ref Table
      Events:
        Upload:
          Type: EventBridgeRule
          Properties:
            RuleName: uploads
            Pattern:
              source: [aws.s3]
              detail:
                bucket:
                  name: [!Ref Bucket]
Outputs:
  MachineArn:
    Value: !Ref Machine
  LogGroup:
    Value: !Ref FnLogs
  Prod:
    Condition: IsProd
    Value: prod-only
"""


@pytest.fixture
def template(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    return load_template(path)


def test_short_forms_become_long_forms(template: dict[str, Any]) -> None:
    fn = template["Resources"]["Fn"]["Properties"]
    assert fn["MemorySize"] == {"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "memory"]}
    assert fn["Environment"]["Variables"]["BUCKET_ARN"] == {"Fn::GetAtt": ["Bucket", "Arn"]}
    assert template["Conditions"]["Both"]["Fn::And"][0] == {"Condition": "NoSubnets"}


def test_intrinsics_resolve(template: dict[str, Any]) -> None:
    stack = Stack(template, stack_name="demo")
    env = stack.properties("Fn")["Environment"]["Variables"]

    assert env["TABLE"] == "demo-ledger"
    assert env["SHARED"] == "own"  # the function's own value wins over Globals
    assert env["BUCKET_ARN"] == f"arn:aws:s3:::{stack.resources['Bucket'].name}"
    assert env["LONG"] == "demo-named-dev/b/${Literal}"
    assert "MAYBE" not in env  # AWS::NoValue drops the key
    assert env["BOTH"] == "both"
    assert stack.properties("Fn")["MemorySize"] == 512
    assert stack.properties("Fn")["Timeout"] == 30


def test_parameters_and_conditions(template: dict[str, Any]) -> None:
    prod = Stack(template, stack_name="demo", parameters={"Stage": "prod", "Subnets": "s-1,s-2"})

    assert "OnlyInProd" in prod.resources
    assert prod.parameters["Subnets"] == ["s-1", "s-2"]
    assert prod.properties("Fn")["Environment"]["Variables"]["MAYBE"] == "prod-only"
    assert prod.outputs()["Prod"] == "prod-only"
    assert "OnlyInProd" not in Stack(template, stack_name="demo").resources


def test_physical_names(template: dict[str, Any]) -> None:
    stack = Stack(template, stack_name="demo")

    bucket = stack.resources["Bucket"].name
    assert bucket.startswith("demo-bucket-")
    assert bucket == bucket.lower()
    assert stack.resources["Named"].name == "demo-named-dev"
    assert stack.resources["Machine"].ref == (
        "arn:aws:states:us-east-1:123456789012:stateMachine:demo-machine"
    )
    # A name may refer to another resource's name.
    assert stack.outputs()["LogGroup"] == f"/aws/lambda/{stack.resources['Fn'].name}"
    assert Stack(template, stack_name="demo").resources["Bucket"].name == bucket  # stable


def test_sam_resources_become_what_the_transform_makes(template: dict[str, Any]) -> None:
    stack = Stack(template, stack_name="demo")

    types = {logical_id: resource.type for logical_id, resource in stack.resources.items()}
    assert not [t for t in types.values() if t.startswith("AWS::Serverless::")]
    assert types["Fn"] == "AWS::Lambda::Function"
    assert types["Machine"] == "AWS::StepFunctions::StateMachine"
    assert types["FnRole"] == types["MachineRole"] == "AWS::IAM::Role"
    assert types["FnEndedPermission"] == "AWS::Lambda::Permission"
    assert types["FnQueued"] == "AWS::Lambda::EventSourceMapping"
    # The local paths come back from the placeholder S3 locations.
    assert stack.local_path("Fn", "Code") == "functions/fn/"
    assert stack.local_path("Machine", "DefinitionS3Location") == "machine.asl.json"

    fn = stack.properties("Fn")
    assert fn["Role"] == stack.resources["FnRole"].attributes["Arn"]
    assert fn["Timeout"] == 30  # from Globals
    machine = stack.properties("Machine")
    assert machine["RoleArn"] == stack.resources["MachineRole"].attributes["Arn"]
    assert machine["DefinitionSubstitutions"]["FnArn"] == stack.resources["Fn"].attributes["Arn"]

    rule = stack.resources["MachineUpload"]
    assert rule.type == "AWS::Events::Rule"
    assert rule.name == "uploads"
    props = stack.properties("MachineUpload")
    assert props["EventPattern"]["detail"]["bucket"]["name"] == [stack.resources["Bucket"].name]
    assert props["Targets"][0]["Arn"] == stack.resources["Machine"].ref
    assert props["Targets"][0]["RoleArn"].endswith(
        ":role/" + stack.resources["MachineUploadRole"].name
    )
    ended = stack.properties("FnEnded")
    assert ended["EventPattern"]["detail"]["stateMachineArn"] == [stack.resources["Machine"].ref]
    (target,) = ended["Targets"]
    assert target["Arn"] == stack.resources["Fn"].attributes["Arn"]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3}


def test_function_role_holds_the_statements_of_its_policy_templates(
    template: dict[str, Any],
) -> None:
    stack = Stack(template, stack_name="demo")
    role = stack.properties("FnRole")

    table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/demo-ledger"
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    # DynamoDBCrudPolicy, as SAM's policy template defines it.
    (crud,) = [s for s in statements if "dynamodb:PutItem" in s["Action"]]
    assert set(crud["Action"]) >= {
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:Scan",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
    }
    assert crud["Resource"] == [table_arn, f"{table_arn}/index/*"]
    # The SQS event adds the managed policy that lets Lambda poll the queue.
    assert role["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    ]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": ["lambda.amazonaws.com"]
    }


def test_a_template_sam_refuses_is_named_without_a_traceback(template: dict[str, Any]) -> None:
    del template["Globals"]["Function"]["Runtime"]

    with pytest.raises(TemplateError, match=r"\[Fn\] is invalid.*Runtime"):
        Stack(template, stack_name="demo")


def test_definition_substitutions() -> None:
    definition = '{"F": "${FnArn}", "T": "${TableName}", "Keep": "${NotGiven}", "B": ${Flag}}'

    assert substitute_definition(
        definition, {"FnArn": "arn:x", "TableName": "t", "Flag": True}
    ) == ('{"F": "arn:x", "T": "t", "Keep": "${NotGiven}", "B": true}')


def test_set_physical_updates_references(template: dict[str, Any]) -> None:
    stack = Stack(template, stack_name="demo")
    stack.set_physical("Bucket", "real-name", {"Arn": "arn:aws:s3:::real-name"})

    assert (
        stack.properties("Fn")["Environment"]["Variables"]["BUCKET_ARN"] == "arn:aws:s3:::real-name"
    )


def test_unknown_references_are_named(template: dict[str, Any]) -> None:
    template["Resources"]["Broken"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {"Tags": [{"Key": "x", "Value": {"Ref": "Nothing"}}]},
    }
    stack = Stack(template, stack_name="demo")

    with pytest.raises(TemplateError, match="Nothing"):
        stack.properties("Broken")


def test_project_template_resolves_without_errors() -> None:
    root = Path(__file__).resolve().parents[2]
    stack = Stack(load_template(root / "template.yaml"), parameters={"WorkerImageTag": "1.0.0"})

    for logical_id in stack.resources:
        stack.properties(logical_id)
    outputs = stack.outputs()
    assert {"InputBucketName", "LedgerTableName", "StateMachineArn"} <= set(outputs)
