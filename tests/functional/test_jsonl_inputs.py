"""Uploads that are not what a JSONL job expects, and item functions that return the wrong
thing, through the real handlers on moto: none may end SUCCEEDED with nothing done."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from pathlib import Path
from typing import Any

import pytest

from stepburst import components, planning, storage
from stepburst.errors import ItemsFailedError
from stepburst.jobs.model import DEFAULT_JSONL_MB_PER_SECOND

from .conftest import Cloud
from .handlers import invoke
from .test_coordinator import (
    EXECUTION,
    plan_payload,
    read_outputs,
    reference_output,
    sample_lines,
    upload,
)
from .test_job_kinds import run_units

pytestmark = pytest.mark.functional


def finalize(plan: dict[str, Any]) -> dict[str, Any]:
    outcome: dict[str, Any] = invoke(
        "finalize", {"plan": plan, "fanout": {}, "execution_id": EXECUTION + "run-1"}
    )
    return outcome


def items_of(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return list(components.ledger().iter_items(plan["run_id"]))


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


# -- gzip is read transparently ----------------------------------------------------------------


@pytest.mark.parametrize("key", ["incoming/yelp/b.jsonl.gz", "incoming/yelp/gzipped-b.jsonl"])
def test_a_gzip_upload_gives_the_records_of_the_plain_file(cloud: Cloud, key: str) -> None:
    body = sample_lines(2000, bad_fraction=0.02)
    plain = invoke("plan", plan_payload(upload(cloud, "incoming/yelp/b.jsonl", body), "plain"))
    run_units(plain)
    assert finalize(plain)["status"] == "SUCCEEDED"

    plan = invoke("plan", plan_payload(upload(cloud, key, gzip.compress(body, mtime=0)), "gz"))
    assert plan["status"] == "PLANNED"
    assert plan["items"] == 1, "a gzip stream cannot be split into byte ranges"
    run_units(plan)
    outcome = finalize(plan)
    assert outcome["status"] == "SUCCEEDED"

    ledger = components.ledger()
    plain_run, run = ledger.get_run(plain["run_id"]), ledger.get_run(plan["run_id"])
    assert plain_run is not None
    assert run is not None
    assert read_outputs(cloud, run["output_prefix"]) == reference_output(body)
    for figure in ("lines", "records", "rejects", "bytes_out"):
        assert run[figure] == plain_run[figure], figure
    (item,) = items_of(plan)
    assert item["compression"] == "gzip"
    assert item["bytes_in"] == len(body)

    def rejects(prefix: str) -> bytes:
        return storage.get_bytes(cloud.output_bucket, prefix + "rejects.jsonl")

    assert rejects(run["output_prefix"]) == rejects(plain_run["output_prefix"])


def test_a_large_upload_is_identified_by_one_small_read(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planning, "WHOLE_READ_LIMIT", 0)
    reads: list[tuple[int, int]] = []
    real_read = storage.read_range

    def counted(obj: storage.S3Object, start: int, end: int, **kwargs: Any) -> bytes:
        reads.append((start, end))
        return real_read(obj, start, end, **kwargs)

    monkeypatch.setattr(storage, "read_range", counted)
    body = gzip.compress(sample_lines(500), mtime=0)
    plan = invoke("plan", plan_payload(upload(cloud, "incoming/yelp/big.jsonl.gz", body)))
    assert plan["items"] == 1
    assert len(reads) == 1
    start, end = reads[0]
    assert start == 0
    assert end - start <= 4096
    (unit,) = storage.get_json(plan["manifest"]["bucket"], plan["manifest"]["key"])
    (item,) = unit["items"]
    assert (item["jsonl"]["start"], item["jsonl"]["end"]) == (0, len(body))
    # Its duration is estimated from the JSON lines it holds, not from its compressed size.
    work = len(body) * planning.GZIP_EXPANSION / (DEFAULT_JSONL_MB_PER_SECOND * 1e6)
    assert item["estimated_seconds"] == round(planning.ITEM_OVERHEAD_SECONDS + work, 3)


# -- other formats fail their item, saying what the object is -------------------------------------


NOT_JSON_LINES = [
    ("zip", zipped("b.jsonl", sample_lines(50)), "a zip archive"),
    ("bzip2", bz2.compress(sample_lines(50)), "bzip2-compressed data"),
    ("xz", lzma.compress(sample_lines(50)), "xz-compressed data"),
    # A zstd frame: its magic number, a header, then data (no zstd module in the stdlib).
    ("zstd", b"\x28\xb5\x2f\xfd\x24\x05\x29\x00\x00hello" + bytes(range(40)), "zstd-compressed"),
    ("binary", bytes(range(256)) * 4, "binary data"),
    (
        "tar.gz",
        gzip.compress(b"member.jsonl".ljust(257, b"\0") + b"ustar\x0000" + bytes(700), mtime=0),
        "a tar archive",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "described"), NOT_JSON_LINES, ids=[case[0] for case in NOT_JSON_LINES]
)
def test_other_formats_fail_their_item_with_what_the_object_is(
    cloud: Cloud, name: str, body: bytes, described: str
) -> None:
    plan = invoke("plan", plan_payload(upload(cloud, f"incoming/yelp/{name}.jsonl", body)))
    assert plan["items"] == 1, "no point splitting what is not JSON lines"
    (unit,) = storage.get_json(plan["manifest"]["bucket"], plan["manifest"]["key"])
    if name != "tar.gz":  # gzip is read; what it holds is known once it is decompressed
        assert unit["items"][0]["estimated_seconds"] == planning.ITEM_OVERHEAD_SECONDS
    (outcome,) = run_units(plan)
    assert isinstance(outcome, ItemsFailedError)
    (item,) = items_of(plan)
    assert item["status"] == "FAILED"
    assert item["error"] == "NotJsonLinesError"
    assert described in item["cause"]
    assert "not JSON lines" in item["cause"]
    finished = finalize(plan)
    assert finished["status"] == "FAILED"
    assert described in finished["cause"]


def test_a_truncated_gzip_upload_fails_its_item(cloud: Cloud) -> None:
    body = gzip.compress(sample_lines(300), mtime=0)
    plan = invoke("plan", plan_payload(upload(cloud, "incoming/yelp/cut.jsonl.gz", body[:-50])))
    run_units(plan)
    (item,) = items_of(plan)
    assert item["status"] == "FAILED"
    assert "ends before the end of its gzip stream" in item["cause"]
    assert finalize(plan)["status"] == "FAILED"


# -- the reject bound ----------------------------------------------------------------------------


def test_an_upload_of_mostly_rejects_fails_its_item(cloud: Cloud) -> None:
    csv = b"name,stars,review_count\n" + b"".join(b"shop %d,4.5,%d\n" % (n, n) for n in range(99))
    plan = invoke("plan", plan_payload(upload(cloud, "incoming/yelp/table.jsonl", csv)))
    run_units(plan)
    (item,) = items_of(plan)
    assert item["status"] == "FAILED"
    assert item["error"] == "TooManyRejectsError"
    assert "100 of 100 lines rejected (100.0%)" in item["cause"]
    assert "max_reject_percent of 50" in item["cause"]
    assert "invalid_json: 100" in item["cause"]
    run = components.ledger().get_run(plan["run_id"])
    assert run is not None
    # The rejects stay where the cause says, to see what went wrong; no output part is left.
    rejects_key = run["output_prefix"] + "rejects/part-00000.jsonl"
    assert rejects_key in item["cause"]
    assert len(list(storage.iter_lines(cloud.output_bucket, rejects_key))) == 100
    assert read_outputs(cloud, run["output_prefix"]) == []
    assert finalize(plan)["status"] == "FAILED"


JOBS_WITH_BOUNDS = {
    "lenient-scores.yaml": """
name: lenient-scores
triggers:
  s3:
    - prefix: incoming/lenient/
split:
  jsonl:
    max_reject_percent: 100
run:
  function: yelp_scores:add_review_score
output:
  prefix: lenient/
""",
    "strict-scores.yaml": """
name: strict-scores
triggers:
  s3:
    - prefix: incoming/strict/
split:
  jsonl:
    max_reject_percent: 1
run:
  function: yelp_scores:add_review_score
output:
  prefix: strict/
""",
    "item_results.py": """
def as_list(item, params):
    return [item, 1]


def as_text(item, params):
    return "done"


def as_set(item, params):
    return {"seen": {1, 2}}


def as_mapping(item, params):
    return {"item": item, "ratio": 0.5, "parts": (1, 2)}
""",
}


@pytest.fixture
def jobs(cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped jobs and a few of this module's own, in a jobs directory of the test's."""
    directory = tmp_path / "jobs"
    directory.mkdir()
    shipped = Path(__file__).resolve().parents[2] / "jobs"
    for path in shipped.iterdir():
        if path.suffix in (".yaml", ".py"):
            (directory / path.name).write_text(path.read_text(encoding="utf-8"), "utf-8")
    for name, text in JOBS_WITH_BOUNDS.items():
        (directory / name).write_text(text, encoding="utf-8")
    for function in ("as_list", "as_text", "as_set", "as_mapping"):
        job = f"name: {function.replace('_', '-')}\nsplit: {{single: {{}}}}\n"
        job += f"run: {{function: 'item_results:{function}'}}\noutput: {{prefix: out/}}\n"
        (directory / f"{function.replace('_', '-')}.yaml").write_text(job, encoding="utf-8")
    monkeypatch.setenv("STEPBURST_JOBS_DIR", str(directory))
    monkeypatch.syspath_prepend(str(directory))
    components.reset()
    return directory


def test_the_bound_is_the_jobs_own(cloud: Cloud, jobs: Path) -> None:
    body = sample_lines(400, bad_fraction=0.1)
    lenient = invoke("plan", plan_payload(upload(cloud, "incoming/lenient/a.jsonl", b"x\n" * 9)))
    run_units(lenient)
    assert finalize(lenient)["status"] == "SUCCEEDED"
    (item,) = items_of(lenient)
    assert (item["records"], item["rejects"]) == (0, 9)

    strict = invoke("plan", plan_payload(upload(cloud, "incoming/strict/a.jsonl", body), "s"))
    run_units(strict)
    (item,) = items_of(strict)
    assert item["status"] == "FAILED"
    assert "max_reject_percent of 1" in item["cause"]


# -- item functions: a mapping or None ------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "problem"),
    [
        ("as-list", "the function returned a list; return a mapping or None"),
        ("as-text", "the function returned a str; return a mapping or None"),
        ("as-set", "cannot be kept as JSON"),
    ],
)
def test_an_item_function_returning_no_mapping_fails_its_item(
    jobs: Path, job: str, problem: str
) -> None:
    plan = invoke("plan", plan_payload({"job": job, "input": {"item": "x"}}))
    (outcome,) = run_units(plan)
    assert isinstance(outcome, ItemsFailedError)
    (item,) = items_of(plan)
    assert item["status"] == "FAILED"
    assert problem in item["cause"]
    assert "item_results:" in item["cause"]


def test_an_item_function_result_is_kept_as_json(jobs: Path) -> None:
    plan = invoke("plan", plan_payload({"job": "as-mapping", "input": {"item": "x"}}))
    run_units(plan)
    (item,) = items_of(plan)
    assert item["status"] == "SUCCEEDED"
    assert item["result"] == {"item": "x", "ratio": 0.5, "parts": [1, 2]}
