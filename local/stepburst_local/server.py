"""``stepburst local up``: the stack on the local engine, served until stopped.

boto3 and the AWS CLI reach it with ``--endpoint-url`` (S3, DynamoDB, Step Functions, ECS,
Batch, EventBridge ...). An upload to the input bucket starts a run exactly as on AWS.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from stepburst_local.engine import LocalEngine

EXIT_OK = 0
EXIT_FAILED = 1


def describe(engine: LocalEngine) -> str:
    """What a user needs to use the running stack: endpoint, names, example commands."""
    outputs = engine.outputs
    endpoint = engine.endpoint_url
    lines = [
        f"stepburst local engine on {endpoint}  (region {engine.region}, account "
        f"{engine.account_id}, any credentials)",
        "",
    ]
    width = max((len(name) for name in outputs), default=0)
    lines += [f"  {name:<{width}}  {value}" for name, value in sorted(outputs.items())]
    input_bucket = outputs.get("InputBucketName")
    lines += [
        "",
        "Try:",
        f"  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=test "
        f"AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION={engine.region}",
    ]
    if input_bucket:
        lines.append(f"  aws s3 cp businesses.jsonl s3://{input_bucket}/incoming/yelp/")
    if "StateMachineArn" in outputs:
        lines.append(
            f"  aws stepfunctions list-executions --state-machine-arn {outputs['StateMachineArn']}"
        )
    lines += ["", "Ctrl-C stops it (everything is in memory and goes away)."]
    return "\n".join(lines)


def serve(
    project: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 4566,
    out: TextIO | None = None,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run the stack until SIGINT/SIGTERM (or ``stop`` is set); 0 on a clean stop."""
    stream = out or sys.stdout
    stopping = stop or threading.Event()
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        try:
            engine = LocalEngine(project, host=host, port=port, quiet=True)
            engine.start()
        except OSError as error:
            print(f"cannot serve on {host}:{port}: {error}", file=sys.stderr)
            return EXIT_FAILED
        try:
            print(describe(engine), file=stream, flush=True)
            if ready is not None:
                ready.set()
            while not stopping.wait(0.5):
                pass
            print("stopping", file=stream, flush=True)
        finally:
            engine.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return EXIT_OK
