"""S3 storage against moto: ranged streaming reads, multipart writes, aborts, JSON helpers."""

from __future__ import annotations

import base64
import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from awscrt.checksums import crc32c
from botocore.exceptions import ClientError, ResponseStreamingError

from stepburst.aws import client
from stepburst.errors import ConnectionDroppedError, SourceChangedError
from stepburst.storage import (
    MIN_PART_SIZE,
    STREAM_RETRIES,
    MultipartWriter,
    ObjectNotFoundError,
    S3Object,
    delete_object,
    get_json,
    head_object,
    iter_lines,
    iter_range,
    object_exists,
    put_bytes,
    put_json,
    read_range,
)
from tests.polling import poll

pytestmark = pytest.mark.functional

BUCKET = "stepburst-test-bucket"


def uploads_in_progress(s3: Any) -> list[Any]:
    return list(s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def body(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


# -- MultipartWriter -------------------------------------------------------------------------


def test_multipart_round_trip_with_several_parts(s3: Any) -> None:
    rng = random.Random(7)
    data = rng.randbytes(2 * MIN_PART_SIZE + 12345)
    with MultipartWriter(BUCKET, "out/big.jsonl", part_size=MIN_PART_SIZE, max_workers=2) as out:
        position = 0
        while position < len(data):
            step = rng.randint(1, 3 * 1024 * 1024)
            out.write(data[position : position + step])
            position += step
    assert out.bytes_written == len(data)
    assert body(s3, "out/big.jsonl") == data
    head = s3.head_object(Bucket=BUCKET, Key="out/big.jsonl")
    assert head["ETag"].endswith('-3"')
    assert head["ContentType"] == "application/x-ndjson"
    assert out.etag == head["ETag"]
    assert uploads_in_progress(s3) == []


@pytest.mark.parametrize("size", [MIN_PART_SIZE + 10, 100])
def test_uploads_carry_a_precomputed_crc32c_and_are_never_aws_chunked(s3: Any, size: int) -> None:
    """botocore streams a checksum it computes itself as aws-chunked over HTTPS; one given
    to it goes as a plain header, and S3 checks it against the body."""
    sent: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        headers = {
            name: value.decode() if isinstance(value, bytes) else value
            for name, value in request.headers.items()
        }
        sent.append(headers)

    events = client("s3").meta.events
    events.register("before-send.s3.UploadPart", capture)
    events.register("before-send.s3.PutObject", capture)
    try:
        data = random.Random(size).randbytes(size)
        with MultipartWriter(BUCKET, "out/checked.bin", part_size=MIN_PART_SIZE) as out:
            out.write(data)
    finally:
        events.unregister("before-send.s3.UploadPart", capture)
        events.unregister("before-send.s3.PutObject", capture)

    parts = [data[:MIN_PART_SIZE], data[MIN_PART_SIZE:]] if size > MIN_PART_SIZE else [data]
    expected = {base64.b64encode(crc32c(part).to_bytes(4, "big")).decode() for part in parts}
    assert {headers["x-amz-checksum-crc32c"] for headers in sent} == expected
    assert len(sent) == len(parts)
    for headers in sent:
        assert "aws-chunked" not in headers.get("Content-Encoding", "")
        # The checksum stands for the body: it is not hashed again to be signed.
        assert {name.lower(): value for name, value in headers.items()}.get(
            "x-amz-content-sha256"
        ) == "UNSIGNED-PAYLOAD", headers
    assert body(s3, "out/checked.bin") == data


def test_what_is_left_at_close_goes_as_parallel_parts_of_at_least_the_minimum(s3: Any) -> None:
    """The last write is followed by uploads of parts of 5 MiB or more, not of a whole part."""
    sizes: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["Body"]))

    events = client("s3").meta.events
    events.register("provide-client-params.s3.UploadPart", record)
    try:
        data = random.Random(3).randbytes(3 * MIN_PART_SIZE + 2 * MIN_PART_SIZE + 12345)
        with MultipartWriter(BUCKET, "out/tail.bin", part_size=3 * MIN_PART_SIZE) as out:
            out.write(data)
    finally:
        events.unregister("provide-client-params.s3.UploadPart", record)

    tail = len(data) - 3 * MIN_PART_SIZE  # less than a part: once, one upload after the write
    # The parts go up in parallel threads: in any order.
    assert sorted(sizes) == [tail // 2, tail - tail // 2, 3 * MIN_PART_SIZE]
    assert tail // 2 >= MIN_PART_SIZE
    assert body(s3, "out/tail.bin") == data
    assert uploads_in_progress(s3) == []


def test_a_buffer_changed_after_its_write_does_not_change_the_object(s3: Any) -> None:
    """The writer keeps what it is given until its part goes up: a caller's bytearray is
    copied, so reusing it does not rewrite what was written."""
    reused = bytearray(b"a" * 1000)
    with MultipartWriter(BUCKET, "out/reused.bin", part_size=MIN_PART_SIZE) as out:
        out.write(reused)
        reused[:] = b"b" * 1000
        out.write(memoryview(reused))
    assert body(s3, "out/reused.bin") == b"a" * 1000 + b"b" * 1000


def test_exactly_one_part_is_still_complete(s3: Any) -> None:
    data = b"x" * MIN_PART_SIZE
    with MultipartWriter(BUCKET, "out/one.bin", part_size=MIN_PART_SIZE) as out:
        out.write(data)
    assert body(s3, "out/one.bin") == data
    assert uploads_in_progress(s3) == []


@pytest.mark.parametrize("data", [b"", b'{"a": 1}\n'])
def test_small_outputs_are_a_single_put(s3: Any, data: bytes) -> None:
    with MultipartWriter(BUCKET, "out/small.jsonl") as out:
        if data:
            out.write(data)
    assert body(s3, "out/small.jsonl") == data
    assert "-" not in s3.head_object(Bucket=BUCKET, Key="out/small.jsonl")["ETag"]
    assert uploads_in_progress(s3) == []


@pytest.mark.parametrize("written", [100, 2 * MIN_PART_SIZE + 1])
def test_an_exception_aborts_the_upload(s3: Any, written: int) -> None:
    def fail_while_writing() -> None:
        with MultipartWriter(BUCKET, "out/failed.jsonl", part_size=MIN_PART_SIZE) as out:
            out.write(b"y" * written)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_while_writing()
    assert not object_exists(S3Object(BUCKET, "out/failed.jsonl"))
    assert uploads_in_progress(s3) == []


def test_a_failed_part_fails_the_write_and_aborts(s3: Any) -> None:
    writer = MultipartWriter("stepburst-no-such-bucket", "k", part_size=MIN_PART_SIZE)
    with pytest.raises(ObjectNotFoundError), writer:
        writer.write(b"z" * (MIN_PART_SIZE + 1))
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"more")


def test_writer_refuses_parts_below_the_s3_minimum() -> None:
    with pytest.raises(ValueError, match="part_size"):
        MultipartWriter(BUCKET, "k", part_size=1024)


# -- reads -----------------------------------------------------------------------------------


@pytest.fixture
def blob(s3: Any) -> bytes:
    data = random.Random(3).randbytes(50_000)
    s3.put_object(Bucket=BUCKET, Key="in/blob.bin", Body=data)
    return data


@pytest.mark.parametrize(
    "reader",
    [{"prefetch": False}, {"connections": 1}, {"connections": 3}],
    ids=["inline", "thread", "pool"],
)
@pytest.mark.parametrize(
    ("start", "end", "chunk_size"),
    [
        (0, 50_000, 8 * 1024 * 1024),
        (0, 50_000, 1),
        (1, 49_999, 777),
        (12_345, 12_346, 3),
        (49_000, 60_000, 300),
        (7, 7, 10),
        (60_000, 70_000, 10),
    ],
)
def test_iter_range_returns_exactly_the_range(
    blob: bytes, start: int, end: int, chunk_size: int, reader: dict[str, Any]
) -> None:
    if chunk_size == 1:
        end = start + 200  # one GET per byte: keep it short
    obj = S3Object(BUCKET, "in/blob.bin")
    pieces = list(iter_range(obj, start, end, chunk_size=chunk_size, **reader))
    assert b"".join(pieces) == blob[start:end]
    assert all(pieces)


def test_read_range(blob: bytes) -> None:
    obj = S3Object(BUCKET, "in/blob.bin")
    assert read_range(obj, 10, 20) == blob[10:20]
    assert read_range(obj, 20, 10) == b""
    assert read_range(obj, 49_990, 50_100) == blob[49_990:]
    assert read_range(obj, 50_000, 50_100) == b""


def test_a_changed_object_is_detected(s3: Any, blob: bytes) -> None:
    obj = S3Object(BUCKET, "in/blob.bin")
    etag = head_object(obj).etag
    with pytest.raises(SourceChangedError):
        read_range(obj, 0, 10, if_match='"0123456789abcdef0123456789abcdef"')
    assert read_range(obj, 0, 10, if_match=etag) == blob[:10]
    pieces = iter_range(obj, 0, 50_000, chunk_size=1000, prefetch=False)
    assert next(pieces) == blob[:1000]
    s3.put_object(Bucket=BUCKET, Key="in/blob.bin", Body=b"replaced")
    with pytest.raises(SourceChangedError):
        list(pieces)


def test_parallel_reads_start_with_one_mib_and_double_up_to_the_chunk_size(s3: Any) -> None:
    """The reader gets its first bytes after one MiB, not after a whole chunk shared by every
    connection."""
    mib = 1024 * 1024
    data = random.Random(5).randbytes(12 * mib + 7)
    s3.put_object(Bucket=BUCKET, Key="in/ramp.bin", Body=data)
    ranges: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        ranges.append(params["Range"])

    events = client("s3").meta.events
    events.register("provide-client-params.s3.GetObject", record)
    try:
        read = b"".join(
            iter_range(S3Object(BUCKET, "in/ramp.bin"), 0, len(data), chunk_size=4 * mib)
        )
    finally:
        events.unregister("provide-client-params.s3.GetObject", record)

    assert read == data
    spans = sorted((int(low), int(high)) for low, high in (r[6:].split("-") for r in ranges))
    assert [high + 1 - low for low, high in spans] == [mib, 2 * mib, 4 * mib, 4 * mib, mib + 7]


def test_a_changed_object_is_detected_by_parallel_reads(s3: Any, blob: bytes) -> None:
    obj = S3Object(BUCKET, "in/blob.bin")
    pieces = iter_range(obj, 0, 50_000, chunk_size=1000, connections=2)
    assert next(pieces) == blob[:1000]
    s3.put_object(Bucket=BUCKET, Key="in/blob.bin", Body=blob[::-1])
    with pytest.raises(SourceChangedError):
        list(pieces)


def test_prefetch_stops_when_the_reader_stops(blob: bytes) -> None:
    before = {t.ident for t in threading.enumerate()}
    pieces = iter_range(S3Object(BUCKET, "in/blob.bin"), 0, 50_000, chunk_size=100, connections=1)
    assert next(pieces) == blob[:100]
    pieces.close()

    def prefetch_stopped() -> bool:
        started = [t for t in threading.enumerate() if t.ident not in before]
        return not any(t.name == "stepburst-prefetch" for t in started)

    poll(prefetch_stopped, what="the prefetch thread stops", timeout=10, interval=0.05)


def test_missing_objects_raise_not_found(s3: Any) -> None:
    obj = S3Object(BUCKET, "nope")
    with pytest.raises(ObjectNotFoundError, match="s3://stepburst-test-bucket/nope"):
        head_object(obj)
    with pytest.raises(ObjectNotFoundError):
        read_range(obj, 0, 10)
    with pytest.raises(ObjectNotFoundError):
        get_json(BUCKET, "nope")
    assert not object_exists(obj)
    delete_object(obj)  # deleting what is absent is fine


def test_head_object(blob: bytes) -> None:
    info = head_object(S3Object(BUCKET, "in/blob.bin"))
    assert info.size == len(blob)
    assert info.etag.startswith('"')


def test_json_and_bytes_helpers(s3: Any) -> None:
    document = {"run": "r-1", "items": [1, 2, 3], "name": "Café"}
    put_json(BUCKET, "runs/r-1.json", document)
    assert get_json(BUCKET, "runs/r-1.json") == document
    assert s3.head_object(Bucket=BUCKET, Key="runs/r-1.json")["ContentType"] == "application/json"
    put_bytes(BUCKET, "raw.bin", b"\x00\x01")
    assert body(s3, "raw.bin") == b"\x00\x01"


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"", []),
        (b"a\nb\n", [b"a", b"b"]),
        (b"a\r\n\nlast", [b"a\r", b"", b"last"]),
    ],
)
def test_iter_lines(s3: Any, data: bytes, lines: list[bytes]) -> None:
    put_bytes(BUCKET, "rejects.jsonl", data)
    assert list(iter_lines(BUCKET, "rejects.jsonl")) == lines


def test_s3_object_uri() -> None:
    obj = S3Object("b", "a/b.jsonl")
    assert obj.uri() == "s3://b/a/b.jsonl"


class BreakingS3:
    """A stand-in client whose first GET body breaks after ``break_after`` bytes."""

    def __init__(self, data: bytes, break_after: int) -> None:
        self.data = data
        self.break_after = break_after
        self.requests: list[dict[str, Any]] = []

    def get_object(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        first, last = (int(n) for n in request["Range"].removeprefix("bytes=").split("-"))
        payload = self.data[first : last + 1]
        broken = len(self.requests) == 1
        cut = self.break_after

        class Body:
            def iter_chunks(self, size: int) -> Iterator[bytes]:
                for start in range(0, len(payload), size):
                    if broken and start >= cut:
                        raise ResponseStreamingError(error="connection reset")
                    yield payload[start : start + size]

            def close(self) -> None:
                pass

        return {"Body": Body(), "ETag": '"v1"'}


def test_a_broken_body_resumes_where_it_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytes(range(256)) * 20_000  # 5 MB: several 1 MiB pieces
    fake = BreakingS3(data, break_after=2 * 1024 * 1024)
    monkeypatch.setattr("stepburst.storage.client", lambda service: fake)
    got = b"".join(iter_range(S3Object("b", "k"), 10, len(data), prefetch=False))
    assert got == data[10:]
    assert len(fake.requests) == 2
    assert fake.requests[1]["Range"] == f"bytes={10 + 2 * 1024 * 1024}-{len(data) - 1}"
    assert fake.requests[1]["IfMatch"] == '"v1"'  # pinned to the first response's ETag


class CuttingS3:
    """A stand-in client whose GET bodies end halfway through the range their Content-Range
    announces (the first ``cuts`` of them); later GETs see ``etags`` in turn, and an IfMatch
    that is not the current ETag fails as S3 fails it."""

    def __init__(self, data: bytes, cuts: int, etags: list[str]) -> None:
        self.data = data
        self.cuts = cuts
        self.etags = etags
        self.requests: list[dict[str, Any]] = []

    def get_object(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        etag = self.etags[min(len(self.requests), len(self.etags)) - 1]
        if request.get("IfMatch") not in (None, etag):
            raise ClientError(
                {
                    "Error": {
                        "Code": "PreconditionFailed",
                        "Message": "At least one of the pre-conditions you specified did not hold",
                    }
                },
                "GetObject",
            )
        first, last = (int(n) for n in request["Range"].removeprefix("bytes=").split("-"))
        last = min(last, len(self.data) - 1)
        payload = self.data[first : last + 1]
        if len(self.requests) <= self.cuts:
            payload = payload[: len(payload) // 2]
        chunks = [payload[i : i + 65536] for i in range(0, len(payload), 65536)]

        class Body:
            def iter_chunks(self, size: int) -> Iterator[bytes]:
                yield from chunks

            def close(self) -> None:
                pass

        content_range = f"bytes {first}-{last}/{len(self.data)}"
        return {"Body": Body(), "ETag": etag, "ContentRange": content_range}


def test_a_body_cut_short_resumes_from_the_last_byte_received(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = bytes(range(256)) * 4_000
    fake = CuttingS3(data, cuts=2, etags=['"v1"'])
    monkeypatch.setattr("stepburst.storage.client", lambda service: fake)

    got = b"".join(iter_range(S3Object("b", "k"), 100, len(data), prefetch=False))

    assert got == data[100:]
    assert [r["Range"] for r in fake.requests] == [
        f"bytes=100-{len(data) - 1}",
        f"bytes={100 + (len(data) - 100) // 2}-{len(data) - 1}",
        f"bytes={len(data) - (len(data) - 100) // 4}-{len(data) - 1}",
    ]
    assert [r.get("IfMatch") for r in fake.requests] == [None, '"v1"', '"v1"']


def test_a_body_cut_short_of_an_object_replaced_since_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = bytes(range(256)) * 4_000
    fake = CuttingS3(data, cuts=1, etags=['"v1"', '"v2"'])
    monkeypatch.setattr("stepburst.storage.client", lambda service: fake)

    with pytest.raises(SourceChangedError):
        b"".join(iter_range(S3Object("b", "k"), 0, len(data), prefetch=False))


def test_a_body_cut_short_again_and_again_fails_within_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = bytes(range(256)) * 4_000
    fake = CuttingS3(data, cuts=1_000, etags=['"v1"'])
    monkeypatch.setattr("stepburst.storage.client", lambda service: fake)

    with pytest.raises(ConnectionDroppedError, match="after 3 resumptions"):
        b"".join(iter_range(S3Object("b", "k"), 0, len(data), prefetch=False))
    assert len(fake.requests) == 1 + STREAM_RETRIES
