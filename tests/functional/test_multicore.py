"""An item split over several processes writes exactly what one process writes.

The processes are real (spawned), so S3 is moto's server on a local port, which they reach
through ``AWS_ENDPOINT_URL`` as the product's clients always do.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from moto.server import ThreadedMotoServer

from stepburst import multicore
from stepburst.aws import client, reset_clients
from stepburst.jsonl import TooManyRejectsError, process_jsonl_range
from stepburst.multicore import lambda_processes, process_jsonl_range_on_cpus, usable_cpus
from stepburst.storage import MIN_PART_SIZE, S3Object
from stepburst_local.samples import iter_business_lines

pytestmark = [pytest.mark.functional, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BUCKET = "stepburst-multicore"
FUNCTION = "yelp_scores:add_review_score"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", raising=False)
    # The children import the job from the path they inherit, as the worker's jobs layer.
    monkeypatch.syspath_prepend(str(REPO / "jobs"))
    reset_clients()
    s3 = client("s3")
    if BUCKET not in {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    yield s3
    reset_clients()


def upload(s3: Any, key: str, lines: list[bytes]) -> tuple[S3Object, int, str]:
    body = b"\n".join(lines) + b"\n"
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    etag = str(s3.head_object(Bucket=BUCKET, Key=key)["ETag"])
    return S3Object(BUCKET, key), len(body), etag


def read(s3: Any, key: str) -> bytes | None:
    try:
        return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def run_both(  # noqa: PLR0917 - the scenario's fields
    s3: Any,
    name: str,
    lines: list[bytes],
    processes: int,
    start_line: int = 0,
    head_start: int = 0,
) -> tuple[Any, Any]:
    source, size, etag = upload(s3, f"in/{name}.jsonl", lines)
    start = sum(len(line) + 1 for line in lines[:start_line])
    one = process_jsonl_range(
        source,
        start,
        size,
        FUNCTION,
        S3Object(BUCKET, f"one/{name}.jsonl"),
        S3Object(BUCKET, f"one/{name}.rejects.jsonl"),
        if_match=etag,
    )
    several = process_jsonl_range_on_cpus(
        source,
        start,
        size,
        FUNCTION,
        S3Object(BUCKET, f"several/{name}.jsonl"),
        S3Object(BUCKET, f"several/{name}.rejects.jsonl"),
        if_match=etag,
        processes=processes,
        part_size=MIN_PART_SIZE,
        min_bytes_per_process=1,
        head_start_bytes=head_start,
    )
    return one, several


@pytest.mark.parametrize(
    ("count", "processes", "start_line", "head_start"),
    [
        (36_000, 2, 0, 0),  # ~23 MB: each process uploads parts, a junction joins them
        (36_000, 2, 0, 4 * MIN_PART_SIZE),  # the parent's share larger, as by default
        (26_000, 3, 5, 0),  # a range that starts mid-object
        (300, 3, 0, 0),  # no process reaches a whole part: one small object
    ],
)
def test_several_processes_write_what_one_writes(
    s3: Any, count: int, processes: int, start_line: int, head_start: int
) -> None:
    lines = list(iter_business_lines(count, seed=count + processes, bad_fraction=0.01))
    name = f"b{count}-{processes}-{start_line}-{head_start}"

    one, several = run_both(s3, name, lines, processes, start_line, head_start)

    assert several.stats.as_dict() == one.stats.as_dict()
    assert one.stats.rejects > 0
    output = read(s3, f"several/{name}.jsonl")
    assert output == read(s3, f"one/{name}.jsonl")
    assert output is not None
    assert output.count(b"\n") == one.stats.records
    rejects = read(s3, f"several/{name}.rejects.jsonl")
    assert rejects == read(s3, f"one/{name}.rejects.jsonl")
    assert rejects is not None
    assert [orjson.loads(line)["item_line"] for line in rejects.splitlines()] == sorted(
        orjson.loads(line)["item_line"] for line in rejects.splitlines()
    )
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_the_reject_bound_holds_over_all_processes(s3: Any) -> None:
    lines = list(iter_business_lines(4000, seed=3, bad_fraction=0.2))
    source, size, etag = upload(s3, "in/bad.jsonl", lines)

    with pytest.raises(TooManyRejectsError, match="rejected"):
        process_jsonl_range_on_cpus(
            source,
            0,
            size,
            FUNCTION,
            S3Object(BUCKET, "several/bad.jsonl"),
            S3Object(BUCKET, "several/bad.rejects.jsonl"),
            if_match=etag,
            max_reject_percent=5,
            processes=2,
            min_bytes_per_process=1,
        )

    assert read(s3, "several/bad.jsonl") is None
    assert read(s3, "several/bad.rejects.jsonl") is not None
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


@pytest.mark.parametrize(
    ("memory_mb", "processes"),
    [(128, 1), (1769, 1), (3537, 1), (3538, 2), (5307, 3), (8845, 5), (10240, 5)],
)
def test_lambda_uses_one_process_per_vcpu_of_its_memory(
    monkeypatch: pytest.MonkeyPatch, memory_mb: int, processes: int
) -> None:
    assert lambda_processes(memory_mb) == processes
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", str(memory_mb))
    assert usable_cpus() == processes


MARKER_MODULE = """
import os


def add_marker(record):
    record["marker"] = os.environ["STEPBURST_TEST_MARKER"]
    return record
"""


def test_children_see_the_environment_and_path_the_parent_has_now(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = list(iter_business_lines(2000, seed=11))
    run_both(s3, "before-marker", lines, 2)  # the children's fork server runs from here on
    (tmp_path / "marker_module.py").write_text(MARKER_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("STEPBURST_TEST_MARKER", "set-after-the-first-item")
    source, size, etag = upload(s3, "in/marker.jsonl", lines)

    several = process_jsonl_range_on_cpus(
        source,
        0,
        size,
        "marker_module:add_marker",
        S3Object(BUCKET, "several/marker.jsonl"),
        S3Object(BUCKET, "several/marker.rejects.jsonl"),
        if_match=etag,
        processes=2,
        part_size=MIN_PART_SIZE,
        min_bytes_per_process=1,
    )

    assert several.stats.rejects == 0
    output = read(s3, "several/marker.jsonl")
    assert output is not None
    markers = {orjson.loads(line)["marker"] for line in output.splitlines()}
    assert markers == {"set-after-the-first-item"}


def test_without_semaphores_the_item_runs_on_one_process(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_semaphores(*args: Any, **kwargs: Any) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(multicore, "ProcessPoolExecutor", no_semaphores)
    lines = list(iter_business_lines(500, seed=5, bad_fraction=0.02))

    one, several = run_both(s3, "no-semaphores", lines, 2)

    assert several.stats.as_dict() == one.stats.as_dict()
    assert read(s3, "several/no-semaphores.jsonl") == read(s3, "one/no-semaphores.jsonl")
