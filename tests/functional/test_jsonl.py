"""A JSONL item end to end on moto: split, process every range, compare with the reference."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from stepburst.errors import SourceChangedError
from stepburst.jsonl import TooManyRejectsError, process_jsonl_range
from stepburst.records import TransformLoadError
from stepburst.splitting import newline_aligned_ranges
from stepburst.storage import S3Object, head_object, object_exists, read_range
from tests.unit.test_records import generated_file, reference_review_scores

pytestmark = pytest.mark.functional

BUCKET = "stepburst-jsonl-test"
EXAMPLE = "yelp_scores:add_review_score"


def upload(s3: Any, key: str, data: bytes) -> S3Object:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return S3Object(BUCKET, key)


def lines_of(s3: Any, key: str) -> list[Any]:
    data = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return [json.loads(line) for line in data.splitlines()]


@pytest.mark.parametrize("crlf", [False, True])
def test_ranges_together_equal_the_reference(s3: Any, crlf: bool) -> None:
    data = generated_file(11, count=600, crlf=crlf)
    source = upload(s3, f"in/yelp-{crlf}.jsonl", data)
    info = head_object(source)
    ranges = newline_aligned_ranges(
        info.size, 40_000, lambda start, end: read_range(source, start, end), probe_size=512
    )
    assert len(ranges) > 5

    outputs: list[Any] = []
    rejects: list[tuple[int, int, str]] = []
    lines_before = 0
    for number, byte_range in enumerate(ranges):
        result = process_jsonl_range(
            source,
            byte_range.start,
            byte_range.end,
            EXAMPLE,
            S3Object(BUCKET, f"out/{crlf}/part-{number:05d}.jsonl"),
            S3Object(BUCKET, f"out/{crlf}/rejects/part-{number:05d}.jsonl"),
            if_match=info.etag,
        )
        assert result.stats.bytes_in == byte_range.size
        outputs.extend(lines_of(s3, result.output.key))
        if result.rejects is None:
            assert not object_exists(
                S3Object(BUCKET, f"out/{crlf}/rejects/part-{number:05d}.jsonl")
            )
        else:
            # Finalize's arithmetic: a range's line numbers start after the earlier ranges'.
            rejects.extend(
                (lines_before + r["item_line"], r["offset"], r["error"])
                for r in lines_of(s3, result.rejects.key)
            )
        lines_before += result.stats.lines

    expected, expected_rejects = reference_review_scores(data)
    assert outputs == expected
    assert rejects == expected_rejects


def test_rerunning_a_range_replaces_its_keys(s3: Any) -> None:
    source = upload(s3, "in/rerun.jsonl", b'{"stars": 1, "review_count": 2}\n')
    output = S3Object(BUCKET, "out/rerun/part-0.jsonl")
    rejects = S3Object(BUCKET, "out/rerun/rejects/part-0.jsonl")
    s3.put_object(Bucket=BUCKET, Key=rejects.key, Body=b"left by an earlier attempt\n")
    s3.put_object(Bucket=BUCKET, Key=output.key, Body=b"stale\n")

    first = process_jsonl_range(source, 0, 32, EXAMPLE, output, rejects)
    second = process_jsonl_range(source, 0, 32, EXAMPLE, output, rejects)

    assert first.stats == second.stats
    assert first.rejects is None
    assert not object_exists(rejects)
    assert lines_of(s3, output.key) == [{"stars": 1, "review_count": 2, "review_score": 2.0}]
    assert second.as_dict()["output"] == "s3://stepburst-jsonl-test/out/rerun/part-0.jsonl"


def test_a_range_of_only_rejects_writes_an_empty_output(s3: Any) -> None:
    source = upload(s3, "in/bad.jsonl", b"nope\n[1]\n")
    result = process_jsonl_range(
        source,
        0,
        9,
        EXAMPLE,
        S3Object(BUCKET, "out/bad/part-0.jsonl"),
        S3Object(BUCKET, "out/bad/rejects/part-0.jsonl"),
    )
    assert result.stats.records == 0
    assert result.rejects is not None
    assert lines_of(s3, "out/bad/part-0.jsonl") == []
    assert [r["error"] for r in lines_of(s3, result.rejects.key)] == [
        "invalid_json",
        "not_an_object",
    ]


def test_a_replaced_source_fails_and_writes_nothing(s3: Any) -> None:
    source = upload(s3, "in/changing.jsonl", b'{"stars": 1, "review_count": 2}\n')
    output = S3Object(BUCKET, "out/changing/part-0.jsonl")
    with pytest.raises(SourceChangedError):
        process_jsonl_range(
            source,
            0,
            32,
            EXAMPLE,
            output,
            S3Object(BUCKET, "out/changing/rejects/part-0.jsonl"),
            if_match='"00000000000000000000000000000000"',
        )
    with pytest.raises(SourceChangedError, match="expected 100"):
        process_jsonl_range(
            source, 0, 100, EXAMPLE, output, S3Object(BUCKET, "out/changing/r.jsonl")
        )
    assert not object_exists(output)


def test_an_unknown_transform_fails_before_reading(s3: Any) -> None:
    source = upload(s3, "in/x.jsonl", b"{}\n")
    with pytest.raises(TransformLoadError, match="yelp_scores:missing"):
        process_jsonl_range(
            source,
            0,
            3,
            "yelp_scores:missing",
            S3Object(BUCKET, "out/x.jsonl"),
            S3Object(BUCKET, "out/x-rejects.jsonl"),
        )
    assert not object_exists(S3Object(BUCKET, "out/x.jsonl"))


@pytest.mark.parametrize("crlf", [False, True])
def test_a_gzip_object_gives_the_bytes_of_the_plain_one(s3: Any, crlf: bool) -> None:
    data = generated_file(5, count=800, crlf=crlf)
    written: dict[str, tuple[bytes, bytes]] = {}
    results = {}
    for name, body in (("plain", data), ("gzip", gzip.compress(data, mtime=0))):
        source = upload(s3, f"in/{name}-{crlf}.jsonl", body)
        output = S3Object(BUCKET, f"out/{name}-{crlf}/part-0.jsonl")
        rejects = S3Object(BUCKET, f"out/{name}-{crlf}/rejects/part-0.jsonl")
        results[name] = process_jsonl_range(source, 0, len(body), EXAMPLE, output, rejects)
        written[name] = (
            s3.get_object(Bucket=BUCKET, Key=output.key)["Body"].read(),
            s3.get_object(Bucket=BUCKET, Key=rejects.key)["Body"].read(),
        )
    assert written["gzip"] == written["plain"]
    assert results["gzip"].stats == results["plain"].stats
    assert (results["plain"].compression, results["gzip"].compression) == (None, "gzip")
    expected, _ = reference_review_scores(data)
    assert [json.loads(line) for line in written["gzip"][0].splitlines()] == expected


def test_a_range_over_the_reject_bound_keeps_only_its_rejects(s3: Any) -> None:
    body = b'{"stars": 1, "review_count": 2}\n' + b"nope\n" * 3 + b"\n" * 5
    source = upload(s3, "in/mostly-bad.jsonl", body)
    output = S3Object(BUCKET, "out/mostly-bad/part-0.jsonl")
    rejects = S3Object(BUCKET, "out/mostly-bad/rejects/part-0.jsonl")
    s3.put_object(Bucket=BUCKET, Key=output.key, Body=b"left by an earlier attempt\n")

    at_the_bound = process_jsonl_range(
        source, 0, len(body), EXAMPLE, output, rejects, max_reject_percent=75
    )
    assert (at_the_bound.stats.rejects, at_the_bound.stats.blank_lines) == (3, 5)
    assert object_exists(output)

    with pytest.raises(TooManyRejectsError) as raised:
        process_jsonl_range(source, 0, len(body), EXAMPLE, output, rejects, max_reject_percent=74)
    assert str(raised.value) == (
        "3 of 4 lines rejected (75.0%), over the job's max_reject_percent of 74 "
        "(invalid_json: 3); the rejects are in "
        "s3://stepburst-jsonl-test/out/mostly-bad/rejects/part-0.jsonl"
    )
    assert not object_exists(output)
    assert [r["error"] for r in lines_of(s3, rejects.key)] == ["invalid_json"] * 3


def test_a_range_after_the_first_is_never_taken_for_binary(s3: Any) -> None:
    # Only an object's first bytes say what it is: a later range starting with a byte that a
    # signature starts with is lines like any other.
    body = b'{"stars": 1, "review_count": 2}\n' + b"PK\x03\x04 not json\n"
    source = upload(s3, "in/later.jsonl", body)
    result = process_jsonl_range(
        source,
        32,
        len(body),
        EXAMPLE,
        S3Object(BUCKET, "out/later/part-1.jsonl"),
        S3Object(BUCKET, "out/later/rejects/part-1.jsonl"),
    )
    assert (result.stats.lines, result.stats.rejects) == (1, 1)
