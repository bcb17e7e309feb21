"""Engine overhead per Distributed Map item, on the local engine's in-memory AWS.

    .venv/bin/python bench/engine_overhead.py [--items 1000] [--concurrency 10]

Runs a Distributed Map over ``--items`` items read from S3 (the coordinator's shape: an
ItemReader, an ItemSelector, MaxConcurrency, a ResultWriter) three ways, and reports the wall
time per item:

1. each child a Pass state (the interpreter's own cost per child execution);
2. each child a ``lambda:invoke`` of a handler that returns at once (adds the Lambda
   integration: client call, the engine's runtime, payload handling);
3. each child the Lambda task plus a DynamoDB ``updateItem`` task (the shape of a unit).

Target: the Lambda child (2) at most 5 ms per item. The process's CPU time per item is printed
beside the wall time: on a loaded machine it moves less than the wall time does. Prints the
figures and ratios; it reports, it does not fail.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stepburst_local.cloud import LocalCloud
from stepburst_local.compute import FunctionSpec

TARGET_MS = 5.0
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:bench-noop"
HANDLER = """
def lambda_handler(event, context):
    return {"unit": event["unit"]["index"]}
"""


def definition(child: dict[str, Any], concurrency: int) -> dict[str, Any]:
    return {
        "StartAt": "FanOut",
        "States": {
            "FanOut": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket": "bench", "Key": "manifest.json"},
                },
                "ItemSelector": {"run_id.$": "$.run_id", "unit.$": "$$.Map.Item.Value"},
                "MaxConcurrency": concurrency,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    **child,
                },
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": "bench", "Prefix": "results"},
                },
                "End": True,
            }
        },
    }


LAMBDA_TASK = {
    "Type": "Task",
    "Resource": "arn:aws:states:::lambda:invoke",
    "Parameters": {"FunctionName": FUNCTION_ARN, "Payload.$": "$"},
    "ResultSelector": {"result.$": "$.Payload"},
    "ResultPath": "$.result",
}
CHILDREN = {
    "pass": {"StartAt": "Noop", "States": {"Noop": {"Type": "Pass", "End": True}}},
    "lambda": {"StartAt": "Invoke", "States": {"Invoke": {**LAMBDA_TASK, "End": True}}},
    "lambda+dynamodb": {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {**LAMBDA_TASK, "Next": "Record"},
            "Record": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:updateItem",
                "Parameters": {
                    "TableName": "bench",
                    "Key": {
                        "pk": {"S.$": "$.run_id"},
                        "sk": {"S.$": "States.Format('{}', $.unit.index)"},
                    },
                    "UpdateExpression": "SET #s = :s",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":s": {"S": "SUCCEEDED"}},
                },
                "End": True,
            },
        },
    },
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--children", nargs="+", choices=sorted(CHILDREN), default=list(CHILDREN))
    args = parser.parse_args()
    if "pass" not in args.children or "lambda" not in args.children:
        parser.error("--children needs pass and lambda (the figures compare them)")

    print(f"engine overhead per Map item: {args.items} items, MaxConcurrency {args.concurrency}")
    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(f"python {platform.python_version()} on {platform.machine()}, load average {load}")
    results: dict[str, float] = {}
    cpu: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch, LocalCloud() as cloud:
        code = Path(scratch)
        (code / "app.py").write_text(HANDLER)
        cloud.register_functions(
            [FunctionSpec("Noop", "bench-noop", FUNCTION_ARN, code, "app.lambda_handler", {}, 30.0)]
        )
        cloud.client("s3").create_bucket(Bucket="bench")
        cloud.client("dynamodb").create_table(
            TableName="bench",
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
        manifest = [{"index": n, "route": "lambda"} for n in range(args.items)]
        cloud.client("s3").put_object(
            Bucket="bench", Key="manifest.json", Body=json.dumps(manifest).encode()
        )
        sfn = cloud.client("stepfunctions")
        for name in args.children:
            child = CHILDREN[name]
            machine = sfn.create_state_machine(
                name=f"bench-{name.replace('+', '-')}",
                definition=json.dumps(definition(child, args.concurrency)),
                roleArn="arn:aws:iam::123456789012:role/bench",
            )["stateMachineArn"]
            # A warm-up run: imports, parsing, first clients.
            cloud.wait_for_execution(cloud.start_state_machine(machine, {"run_id": "warm"}), 300)
            started, cpu_started = time.perf_counter(), time.process_time()
            arn = cloud.start_state_machine(machine, {"run_id": "bench"})
            described = cloud.wait_for_execution(arn, timeout=600, poll=0.005)
            elapsed = time.perf_counter() - started
            cpu[name] = (time.process_time() - cpu_started) * 1000 / args.items
            if described["status"] != "SUCCEEDED":
                print(f"{name}: {described['status']} {described.get('error')}", file=sys.stderr)
                return 1
            results[name] = elapsed * 1000 / args.items
    width = max(len(name) for name in results)
    for name, per_item in results.items():
        rate = 1000 / per_item
        print(
            f"  {name:<{width}}  {per_item:6.2f} ms per item  ({rate:5.0f} items/s)  "
            f"CPU {cpu[name]:6.2f} ms per item"
        )
    lambda_ms = results["lambda"]
    print(
        f"Lambda child: {lambda_ms:.2f} ms per item against a {TARGET_MS:.0f} ms target "
        f"(ratio {lambda_ms / TARGET_MS:.2f}); the Lambda integration adds "
        f"{lambda_ms - results['pass']:.2f} ms to a Pass child"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
