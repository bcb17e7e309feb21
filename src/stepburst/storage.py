"""S3 reads and writes for items: ranged streaming GETs and bounded parallel multipart uploads.

This is the S3 adapter: every call goes through :func:`stepburst.aws.client`, and every botocore
failure becomes a domain error (:class:`~stepburst.errors.ObjectNotFoundError`,
:class:`~stepburst.errors.SourceChangedError`, :class:`~stepburst.errors.ThrottledError`, ... by
:mod:`stepburst.adapters.translation`). It stays a module of its own, beside the other adapters,
because the data path imports it everywhere.

Memory stays constant whatever the object size: :func:`iter_range` reads with ranged GETs of
up to ``chunk_size`` bytes, a few in parallel and only a few chunks ahead of the caller, and
:class:`MultipartWriter` holds at most one buffered part plus ``max_workers`` parts in flight.
"""

from __future__ import annotations

import base64
import itertools
import queue
import threading
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Mapping
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, NotRequired, TypedDict

import orjson
from awscrt import checksums
from botocore.exceptions import (
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from stepburst.adapters.translation import FAILURES, Codes, domain_error
from stepburst.aws import client, error_code
from stepburst.errors import (
    AccessDeniedError,
    AwsError,
    ConnectionDroppedError,
    ObjectNotFoundError,
    SourceChangedError,
    ThrottledError,
)
from stepburst.observability import logger

if TYPE_CHECKING:
    from types_boto3_s3.type_defs import CompletedPartTypeDef

MiB = 1024 * 1024
# S3 limits: parts of at least 5 MiB (but the last), at most 10,000 parts.
MIN_PART_SIZE = 5 * MiB
MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 16 * MiB
DEFAULT_CHUNK_SIZE = 8 * MiB
# Parallel ranged GETs per iter_range: one S3 connection gives about 85-90 MB/s.
DEFAULT_CONNECTIONS = 3
# Size of the pieces a GET's body is read in, and so of what iter_range yields.
PIECE_SIZE = 1 * MiB
# A body that breaks mid-stream is re-requested from where it stopped, this many times.
STREAM_RETRIES = 3
NDJSON = "application/x-ndjson"

# S3's own codes; a HEAD answer has no body, so its code is the HTTP status.
_CODES: Codes = {
    **dict.fromkeys(("404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion"), ObjectNotFoundError),
    "NotFound": ObjectNotFoundError,
    "403": AccessDeniedError,
    "503": ThrottledError,
}
_STREAM_ERRORS = (
    ResponseStreamingError,
    IncompleteReadError,
    ReadTimeoutError,
    ConnectionClosedError,
)


# The checksum every upload carries, computed here once per part so that botocore sends it as
# a plain header instead of streaming the body aws-chunked with a trailer it computes itself.
# CRC32C, because the CRT computes it with the CPU's own instruction, ~10x faster than CRC32
# in zlib or the CRT (bench/item_path_tls.py), and releases the GIL while it does. S3 checks
# it against the body: https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html
CHECKSUM_ALGORITHM: Final = "CRC32C"


def part_checksum(data: bytes) -> str:
    """The ``ChecksumCRC32C`` value S3 expects for ``data``: base64 of the big-endian CRC32C."""
    return base64.b64encode(checksums.crc32c(data).to_bytes(4, "big")).decode("ascii")


class _Location(TypedDict):
    Bucket: str
    Key: str
    VersionId: NotRequired[str]


@dataclass(frozen=True, slots=True)
class S3Object:
    bucket: str
    key: str
    version_id: str | None = None

    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def _location(self) -> _Location:
        location: _Location = {"Bucket": self.bucket, "Key": self.key}
        if self.version_id is not None:
            location["VersionId"] = self.version_id
        return location


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    size: int
    etag: str  # as S3 returns it, with its quotes; usable as IfMatch
    version_id: str | None


def _translate(error: Exception, obj: S3Object) -> Exception:
    if error_code(error) == "PreconditionFailed":  # the IfMatch ETag is no longer the object's
        return SourceChangedError(f"{obj.uri()} changed while it was being read")
    return domain_error(error, obj.uri(), _CODES)


def head_object(obj: S3Object) -> ObjectInfo:
    try:
        response = client("s3").head_object(**obj._location())
    except FAILURES as exc:
        raise _translate(exc, obj) from exc
    return ObjectInfo(
        size=int(response["ContentLength"]),
        etag=str(response["ETag"]),
        version_id=response.get("VersionId"),
    )


def read_range(obj: S3Object, start: int, end: int, *, if_match: str | None = None) -> bytes:
    """Bytes ``[start, end)`` of the object; fewer at its end, ``b""`` past it or if empty."""
    return b"".join(
        iter_range(
            obj, start, end, chunk_size=max(end - start, 1), if_match=if_match, prefetch=False
        )
    )


def iter_range(
    obj: S3Object,
    start: int,
    end: int,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    if_match: str | None = None,
    prefetch: bool = True,
    connections: int = DEFAULT_CONNECTIONS,
) -> Generator[bytes, None, None]:
    """Stream bytes ``[start, end)`` with one ranged GET per ``chunk_size`` bytes.

    Every GET is pinned to one ETag (``if_match``, or the object's when the read starts), so an
    object replaced mid-read raises :class:`~stepburst.errors.SourceChangedError` instead of
    mixing two versions. A body that breaks mid-stream is re-requested from where it stopped.

    Without ``prefetch`` the GETs run in the caller's thread and pieces of up to 1 MiB are
    yielded as they arrive. With it, reads overlap the caller's work: ``connections`` GETs run
    in parallel, each a whole chunk (the first ones smaller: 1 MiB, then doubling), yielded in
    order (one connection gives about 85 MB/s, less than the record processor); with
    ``connections=1`` one thread streams up to ``chunk_size`` bytes ahead. Memory stays within
    ``(connections + 1) * chunk_size``. Closing the generator stops the reads.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if connections < 1:
        raise ValueError(f"connections must be >= 1, got {connections}")
    if start >= end:
        return
    if not prefetch:
        pieces = _get_pieces(obj, start, end, chunk_size, if_match)
    elif connections == 1 or end - start <= chunk_size:
        pieces = _prefetched(
            _get_pieces(obj, start, end, chunk_size, if_match),
            depth=max(1, chunk_size // PIECE_SIZE),
        )
    else:
        pieces = _parallel_chunks(
            obj, start, end, chunk_size, if_match=if_match, connections=connections
        )
    try:
        yield from pieces
    finally:
        pieces.close()


def _parallel_chunks(
    obj: S3Object,
    start: int,
    end: int,
    chunk_size: int,
    *,
    if_match: str | None,
    connections: int,
) -> Generator[bytes, None, None]:
    """Whole chunks fetched ``connections`` at a time, yielded in order."""
    etag = if_match if if_match is not None else head_object(obj).etag
    bounds = _ramped_bounds(start, end, chunk_size)

    def fetch(low: int, high: int) -> bytes:
        return b"".join(_get_pieces(obj, low, high, high - low, etag))

    pool = ThreadPoolExecutor(max_workers=connections, thread_name_prefix="stepburst-get")
    in_flight: deque[tuple[int, Future[bytes]]] = deque()
    try:
        for low, high in itertools.islice(bounds, connections):
            in_flight.append((high - low, pool.submit(fetch, low, high)))
        while in_flight:
            expected, future = in_flight.popleft()
            data = future.result()
            following = next(bounds, None)
            if following is not None:
                in_flight.append((following[1] - following[0], pool.submit(fetch, *following)))
            if data:
                yield data
            if len(data) < expected:  # the object ended early
                return
    finally:
        # Downloads still running finish in the background; nothing waits for them.
        pool.shutdown(wait=False, cancel_futures=True)


def _ramped_bounds(start: int, end: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    """``[start, end)`` cut into ranges of one piece, then each twice the last up to
    ``chunk_size``: the caller starts on the first MiB instead of waiting for a whole chunk
    while all the connections share the bandwidth."""
    size = min(PIECE_SIZE, chunk_size)
    low = start
    while low < end:
        high = min(low + size, end)
        yield low, high
        low = high
        size = min(2 * size, chunk_size)


def _get_pieces(
    obj: S3Object, start: int, end: int, chunk_size: int, if_match: str | None
) -> Generator[bytes, None, None]:
    s3 = client("s3")
    position = start
    etag = if_match
    while position < end:
        request_end = min(position + chunk_size, end)
        retries = 0
        while position < request_end:
            request: dict[str, Any] = {
                **obj._location(),
                "Range": f"bytes={position}-{request_end - 1}",
            }
            if etag is not None:
                request["IfMatch"] = etag
            try:
                response = s3.get_object(**request)
            except FAILURES as exc:
                if error_code(exc) == "InvalidRange":  # starts at or past the end
                    return
                raise _translate(exc, obj) from exc
            if etag is None:
                etag = str(response["ETag"])
            promised = _promised_end(response, position)
            body = response["Body"]
            try:
                for piece in body.iter_chunks(min(PIECE_SIZE, request_end - position)):
                    position += len(piece)
                    yield piece
                if position >= min(promised, request_end):
                    break
                # The body ended before the bytes its Content-Range announced: resumed like
                # a break, with IfMatch still pinning the ETag.
                problem = f"the body ended at byte {position} of {promised}"
            except _STREAM_ERRORS as exc:
                problem = str(exc)
            finally:
                body.close()
            retries += 1
            if retries > STREAM_RETRIES:
                raise ConnectionDroppedError(
                    f"reading {obj.uri()}: {problem}, after {STREAM_RETRIES} resumptions"
                )
            logger.warning(
                "S3 body broke mid-stream; resuming",
                extra={"object": obj.uri(), "position": position, "error": problem},
            )
        if position < request_end:  # the object ended early
            return


def _promised_end(response: Mapping[str, Any], start: int) -> int:
    """Where a ranged GET's body should end (exclusive): the last byte its ``Content-Range``
    (``bytes first-last/size``) names, else ``start`` plus its ``Content-Length``. Fewer
    bytes than that means the body was cut short, not that the object ended (a range past
    the end is answered with the bytes there are:
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html)."""
    content_range = str(response.get("ContentRange") or "")
    unit, _, span = content_range.partition(" ")
    first_last = span.split("/", 1)[0]
    if unit == "bytes" and "-" in first_last:
        last = first_last.split("-", 1)[1]
        if last.isdigit():
            return int(last) + 1
    return start + int(response.get("ContentLength") or 0)


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def _prefetched(source: Generator[bytes, None, None], depth: int) -> Generator[bytes, None, None]:
    """Run ``source`` in a background thread, at most ``depth`` pieces ahead of the reader."""
    pipe: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                pipe.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for piece in source:
                if not put(piece):
                    return
            put(_DONE)
        except BaseException as exc:
            put(_Failure(exc))
        finally:
            source.close()

    thread = threading.Thread(target=produce, name="stepburst-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = pipe.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            assert isinstance(item, bytes)
            yield item
    finally:
        # On an early exit the producer stops at its next piece; it is not waited for, since
        # it may be in the middle of a network read.
        stop.set()


class MultipartWriter:
    """Write one S3 object of any size with constant memory.

    Data is buffered to ``part_size`` and each full part is uploaded by a pool of
    ``max_workers`` threads, with at most ``max_workers`` parts in flight (``write`` waits for
    one to finish); what is left at the end goes as parts of at least 5 MiB, in parallel. A
    clean exit completes the upload; an exception aborts it, leaving neither
    an object nor an incomplete upload. An object smaller than one part, empty included, is
    written with a single ``PutObject``.
    """

    def __init__(
        self,
        bucket: str,
        key: str,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        max_workers: int = 4,
        content_type: str = NDJSON,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.target = S3Object(bucket, key)
        self.part_size = part_size
        self.max_workers = max_workers
        self.content_type = content_type
        self.bytes_written = 0
        self.etag: str | None = None
        # What is written and not yet in a part: the writes themselves, not a copy of them, so
        # that each byte is copied once, into its part (a growing buffer copied it twice more).
        self._pending: deque[bytes | memoryview] = deque()
        self._pending_size = 0
        self._upload_id: str | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: set[Future[CompletedPartTypeDef]] = set()
        self._parts: list[CompletedPartTypeDef] = []
        self._next_part = 1
        self._closed = False

    def __enter__(self) -> MultipartWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, data: bytes) -> None:
        if self._closed:
            raise ValueError(f"write to closed writer for {self.target.uri()}")
        if not isinstance(data, bytes):  # kept until its part is made: it must not change
            data = bytes(data)
        if data:
            self._pending.append(data)
            self._pending_size += len(data)
        self.bytes_written += len(data)
        while self._pending_size >= self.part_size:
            self._submit(self._take(self.part_size))

    def close(self) -> None:
        """Finish the object: upload what is buffered and complete (or put) it."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._upload_id is None:
                body = self._take(self._pending_size)
                put = client("s3").put_object(
                    Bucket=self.target.bucket,
                    Key=self.target.key,
                    Body=body,
                    ContentType=self.content_type,
                    ChecksumCRC32C=part_checksum(body),
                )
                self.etag = put["ETag"]
            else:
                # What is left goes up as parts of at least S3's minimum, in parallel: the
                # object is complete one small part's upload after the last write, not one
                # whole part's.
                tail = self._pending_size
                count = max(1, tail // MIN_PART_SIZE) if tail else 0
                for index in range(count):
                    self._submit(self._take(tail * (index + 1) // count - tail * index // count))
                self._drain(wait_all=True)
                self._parts.sort(key=lambda part: part.get("PartNumber", 0))
                completed = client("s3").complete_multipart_upload(
                    Bucket=self.target.bucket,
                    Key=self.target.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
                self.etag = completed["ETag"]
                self._upload_id = None  # complete: nothing left to abort
        except FAILURES as exc:
            self._abort_upload()
            raise _translate(exc, self.target) from exc
        except BaseException:
            self._abort_upload()
            raise
        finally:
            self._drop_pending()
            self._shutdown()
        logger.debug(
            "object written",
            extra={
                "object": self.target.uri(),
                "bytes": self.bytes_written,
                "parts": len(self._parts),
            },
        )

    def abort(self) -> None:
        """Drop everything written so far; no object is created."""
        if self._closed and self._upload_id is None:
            return
        self._closed = True
        self._drop_pending()
        self._abort_upload()
        self._shutdown()

    # -- internals ------------------------------------------------------------------------

    def _take(self, size: int) -> bytes:
        """The first ``size`` pending bytes, joined into one part."""
        pieces: list[bytes | memoryview] = []
        needed = size
        while needed:
            piece = self._pending.popleft()
            if len(piece) > needed:  # the rest of this write starts the next part
                view = memoryview(piece)
                self._pending.appendleft(view[needed:])
                piece = view[:needed]
            pieces.append(piece)
            needed -= len(piece)
        self._pending_size -= size
        return b"".join(pieces)

    def _drop_pending(self) -> None:
        self._pending.clear()
        self._pending_size = 0

    def _submit(self, part: bytes) -> None:
        if self._upload_id is None:
            try:
                response = client("s3").create_multipart_upload(
                    Bucket=self.target.bucket,
                    Key=self.target.key,
                    ContentType=self.content_type,
                    ChecksumAlgorithm=CHECKSUM_ALGORITHM,
                )
            except FAILURES as exc:
                raise _translate(exc, self.target) from exc
            self._upload_id = response["UploadId"]
            self._executor = ThreadPoolExecutor(
                max_workers=self.max_workers, thread_name_prefix="stepburst-upload"
            )
        if self._next_part > MAX_PARTS:
            raise ValueError(
                f"{self.target.uri()} would need more than {MAX_PARTS} parts; raise part_size"
            )
        while len(self._in_flight) >= self.max_workers:
            self._drain(wait_all=False)
        assert self._executor is not None
        number = self._next_part
        self._next_part += 1
        self._in_flight.add(self._executor.submit(self._upload_part, self._upload_id, number, part))

    def _upload_part(self, upload_id: str, number: int, data: bytes) -> CompletedPartTypeDef:
        try:
            response = client("s3").upload_part(
                Bucket=self.target.bucket,
                Key=self.target.key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ChecksumCRC32C=part_checksum(data),
            )
        except FAILURES as exc:
            raise _translate(exc, self.target) from exc
        part: CompletedPartTypeDef = {"PartNumber": number, "ETag": response["ETag"]}
        if "ChecksumCRC32C" in response:
            part["ChecksumCRC32C"] = response["ChecksumCRC32C"]
        return part

    def _drain(self, *, wait_all: bool) -> None:
        if not self._in_flight:
            return
        done, pending = wait(
            self._in_flight, return_when=ALL_COMPLETED if wait_all else FIRST_COMPLETED
        )
        self._in_flight = set(pending)
        for future in done:
            self._parts.append(future.result())

    def _abort_upload(self) -> None:
        for future in self._in_flight:
            future.cancel()
        if self._in_flight:
            wait(self._in_flight)
        self._in_flight = set()
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            client("s3").abort_multipart_upload(
                Bucket=self.target.bucket, Key=self.target.key, UploadId=upload_id
            )
        except FAILURES as exc:  # an upload left behind is not the caller's failure: say so
            if error_code(exc) != "NoSuchUpload":
                logger.warning(
                    "could not abort multipart upload",
                    extra={"object": self.target.uri(), "upload_id": upload_id, "error": str(exc)},
                )

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def put_bytes(
    bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
) -> None:
    target = S3Object(bucket, key)
    try:
        client("s3").put_object(
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            ChecksumCRC32C=part_checksum(data),
        )
    except FAILURES as exc:
        raise _translate(exc, target) from exc


def put_file(bucket: str, key: str, path: Path) -> str | None:
    """Upload a local file with one PutObject; the new version's id where the bucket keeps them."""
    target = S3Object(bucket, key)
    try:
        with path.open("rb") as body:
            response = client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    except FAILURES as exc:
        raise _translate(exc, target) from exc
    return response.get("VersionId")


def put_json(bucket: str, key: str, document: Any) -> None:
    put_bytes(bucket, key, orjson.dumps(document), content_type="application/json")


def get_bytes(bucket: str, key: str) -> bytes:
    target = S3Object(bucket, key)
    try:
        response = client("s3").get_object(Bucket=bucket, Key=key)
    except FAILURES as exc:
        raise _translate(exc, target) from exc
    body = response["Body"]
    try:
        return bytes(body.read())
    finally:
        body.close()


def get_json(bucket: str, key: str) -> Any:
    return orjson.loads(get_bytes(bucket, key))


def delete_object(obj: S3Object) -> None:
    """Delete the object; deleting one that does not exist is not an error."""
    try:
        client("s3").delete_object(**obj._location())
    except FAILURES as exc:
        raise _translate(exc, obj) from exc


def download_file(obj: S3Object, path: Path) -> None:
    """Download the object to ``path`` (ranged GETs in parallel for a large one)."""
    try:
        client("s3").download_file(obj.bucket, obj.key, str(path))
    except FAILURES as exc:
        raise _translate(exc, obj) from exc


def object_exists(obj: S3Object) -> bool:
    try:
        head_object(obj)
    except ObjectNotFoundError:
        return False
    return True


def iter_lines(bucket: str, key: str) -> Iterator[bytes]:
    """Stream an object's lines, each without its ``\\n``; a final unterminated line too."""
    pending: list[bytes] = []
    for piece in iter_range(S3Object(bucket, key), 0, 2**63 - 1, prefetch=False):
        lines = piece.split(b"\n")
        if pending:
            pending.append(lines[0])
            lines[0] = b"".join(pending)
            pending.clear()
        tail = lines.pop()
        yield from lines
        if tail:
            pending.append(tail)
    if pending:
        yield b"".join(pending)


@dataclass(frozen=True, slots=True)
class ListedObject:
    key: str
    size: int
    # Together they tell a rewritten object from the one that was there before.
    etag: str = ""
    modified: str = ""


def iter_objects(bucket: str, prefix: str) -> Iterator[ListedObject]:
    """Every object under ``prefix``, in key order, a page at a time."""
    pages = client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    try:
        for page in pages:
            for entry in page.get("Contents", []):
                yield ListedObject(
                    key=str(entry["Key"]),
                    size=int(entry["Size"]),
                    etag=str(entry.get("ETag", "")),
                    modified=entry["LastModified"].isoformat() if "LastModified" in entry else "",
                )
    except FAILURES as exc:
        raise _translate(exc, S3Object(bucket, prefix or "/")) from exc


# -- what `stepburst sync` needs: listing with dates, a content digest kept on the object ----

# The SHA-256 of an object's content, kept as user metadata by `stepburst sync`: with SSE-KMS
# an ETag is not the content's MD5, so it cannot tell whether a local file changed.
CONTENT_DIGEST_METADATA = "stepburst-sha256"


@dataclass(frozen=True, slots=True)
class DatedObject:
    key: str
    size: int
    last_modified: float  # seconds since the epoch


def iter_dated_objects(bucket: str, prefix: str) -> Iterator[DatedObject]:
    """Every object under ``prefix`` with its size and last-modified time, in key order."""
    pages = client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    try:
        for page in pages:
            for entry in page.get("Contents", []):
                yield DatedObject(
                    key=str(entry["Key"]),
                    size=int(entry["Size"]),
                    last_modified=entry["LastModified"].timestamp(),
                )
    except FAILURES as exc:
        raise _translate(exc, S3Object(bucket, prefix or "/")) from exc


def content_digest(obj: S3Object) -> str | None:
    """The content digest ``put_file_with_digest`` kept on the object, if it has one."""
    try:
        response = client("s3").head_object(**obj._location())
    except FAILURES as exc:
        raise _translate(exc, obj) from exc
    digest = response.get("Metadata", {}).get(CONTENT_DIGEST_METADATA)
    return str(digest) if digest else None


def put_file_with_digest(bucket: str, key: str, path: Path, digest: str) -> None:
    """Upload a local file (multipart when large), keeping its content digest as metadata."""
    target = S3Object(bucket, key)
    try:
        client("s3").upload_file(
            str(path), bucket, key, ExtraArgs={"Metadata": {CONTENT_DIGEST_METADATA: digest}}
        )
    except FAILURES as exc:
        raise _translate(exc, target) from exc


# DeleteObjects takes at most 1,000 keys a request:
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html
DELETE_BATCH = 1000


def delete_objects(bucket: str, keys: Iterable[str]) -> int:
    """Delete ``keys``, a thousand to a request; every key S3 refuses is an error."""
    deleted = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal deleted
        if not batch:
            return
        try:
            answer = client("s3").delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
        except FAILURES as exc:
            raise _translate(exc, S3Object(bucket, batch[0])) from exc
        refused = answer.get("Errors") or []
        if refused:
            first = refused[0]
            raise AwsError(
                f"s3://{bucket}/{first.get('Key')}: not deleted: {first.get('Message')} "
                f"({len(refused)} keys refused)",
                code=str(first.get("Code", "")),
            )
        deleted += len(batch)
        batch.clear()

    for key in keys:
        batch.append(key)
        if len(batch) == DELETE_BATCH:
            flush()
    flush()
    return deleted


# -- one multipart upload shared by several writers (processes), each with its part numbers --


def create_multipart_upload(target: S3Object, content_type: str = NDJSON) -> str:
    """Start a multipart upload whose parts carry CRC32C checksums; its upload id."""
    try:
        response = client("s3").create_multipart_upload(
            Bucket=target.bucket,
            Key=target.key,
            ContentType=content_type,
            ChecksumAlgorithm=CHECKSUM_ALGORITHM,
        )
    except FAILURES as exc:
        raise _translate(exc, target) from exc
    return str(response["UploadId"])


def upload_part(target: S3Object, upload_id: str, number: int, data: bytes) -> CompletedPartTypeDef:
    """Upload part ``number`` with its CRC32C computed here; what completing it needs."""
    try:
        response = client("s3").upload_part(
            Bucket=target.bucket,
            Key=target.key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumCRC32C=part_checksum(data),
        )
    except FAILURES as exc:
        raise _translate(exc, target) from exc
    part: CompletedPartTypeDef = {"PartNumber": number, "ETag": response["ETag"]}
    if "ChecksumCRC32C" in response:
        part["ChecksumCRC32C"] = response["ChecksumCRC32C"]
    return part


def complete_multipart_upload(
    target: S3Object, upload_id: str, parts: list[CompletedPartTypeDef]
) -> str:
    """Complete the upload from ``parts`` (in part-number order, gaps allowed); its ETag."""
    ordered = sorted(parts, key=lambda part: part.get("PartNumber", 0))
    try:
        response = client("s3").complete_multipart_upload(
            Bucket=target.bucket,
            Key=target.key,
            UploadId=upload_id,
            MultipartUpload={"Parts": ordered},
        )
    except FAILURES as exc:
        raise _translate(exc, target) from exc
    return str(response["ETag"])


def abort_multipart_upload(target: S3Object, upload_id: str) -> None:
    """Drop an upload and its parts; one already gone is not an error."""
    try:
        client("s3").abort_multipart_upload(
            Bucket=target.bucket, Key=target.key, UploadId=upload_id
        )
    except FAILURES as exc:
        if error_code(exc) != "NoSuchUpload":
            raise _translate(exc, target) from exc
