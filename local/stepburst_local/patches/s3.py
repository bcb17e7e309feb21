"""moto's S3 object bodies: ranged GETs read their range, uploads copy linearly.

moto keeps an object's bytes in a spooled temporary file (in memory up to about 5 MiB, on disk
beyond). A GET reads the whole file and only then cuts the requested range out of it, so a
ranged GET of 8 MiB of a 210 MB object reads 210 MB, and reading a whole object range by range
costs its size squared. A ranged GET here seeks to its range and reads only that.

An upload that botocore sends ``aws-chunked`` (its default for a body it checksums) was
quadratic in the body's size twice over (a 210 MB object took over a minute): in-process, moto
reads botocore's chunking wrapper in one ``read()``, which appends each 1 MiB chunk to the
bytes built so far; over HTTP, moto decodes the chunks the same way. Both run in one pass
here. Storing a value larger than the spool's memory limit wrote it to memory first, then
copied it to disk; it goes to disk at once here.
"""

from __future__ import annotations

import contextvars
import io
from collections.abc import Callable
from typing import Any

from botocore.httpchecksum import AwsChunkedWrapper

from stepburst_local.binding import current
from stepburst_local.moto_internals import FakeKey, MotoRequest, S3Response
from stepburst_local.patching import Hook, patch, patch_value

s3_object_bodies = Hook(
    "s3_object_bodies",
    why="moto's GetObject reads the object's whole value and then slices the requested "
    "range out of it: a ranged GET costs the object's size, not the range's, and reading "
    "a large object range by range (as items do) slows down with the object's size. A "
    "single satisfiable range is read from the stored value at its offset; moto answers "
    "every other request (no range, several ranges, unsatisfiable, partNumber) as before. "
    "moto decodes an aws-chunked upload body (botocore's default for checksummed PutObject "
    "and UploadPart) by concatenating bytes chunk after chunk, quadratic in the body's "
    "size (in-process, botocore's chunking wrapper, read whole, does the same), and stores "
    "a large value in memory before copying it to its temporary file: all three are linear "
    "here (the wrapper read in slices, one join of the chunks, one write to the file).",
    upstream="no upstream issue found",
)

_requested_range: contextvars.ContextVar[tuple[int | None, int | None] | None] = (
    contextvars.ContextVar("stepburst_s3_requested_range", default=None)
)


class ValueRange(bytes):
    """The bytes ``first``..``last`` (inclusive) of a stored value of ``total`` bytes."""

    first: int
    last: int
    total: int


def requested_range(header: str | None) -> tuple[int | None, int | None] | None:
    """``(first, last)`` of a ``Range: bytes=first-last`` header (either may be absent, as in
    ``bytes=100-`` and the suffix ``bytes=-500``), or None when it is not one range of bytes
    (moto then answers as it always did)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        return (int(first) if first else None, int(last) if last else None)
    except ValueError:
        return None


def resolve_range(wanted: tuple[int | None, int | None], size: int) -> tuple[int, int] | None:
    """The inclusive byte offsets ``wanted`` selects in a value of ``size`` bytes, as moto's
    own range handling resolves them; None where moto answers otherwise (the whole object,
    or InvalidRange)."""
    first, last = wanted
    end = size - 1
    if (first is None and last == 0) or (first is not None and first > end):
        return None  # unsatisfiable: moto raises InvalidRange
    if first is not None:
        last = end if last is None else min(last, end)
    elif last is not None:  # the last `last` bytes
        first, last = size - min(last, size), end
    else:
        return None
    if first > last:
        return None
    return first, last


def _read_value(key: Any) -> bytes:
    wanted = _requested_range.get()
    if wanted is not None:
        bounds = resolve_range(wanted, key.contentsize)
        if bounds is not None:
            first, last = bounds
            with key.lock:
                key._value_buffer.seek(first)
                piece = ValueRange(key._value_buffer.read(last - first + 1))
            piece.first, piece.last, piece.total = first, last, key.contentsize
            return piece
    with key.lock:
        key._value_buffer.seek(0)
        return bytes(key._value_buffer.read())


def _write_value(key: Any, new_value: bytes | str) -> None:
    if isinstance(new_value, str):  # as moto accepts it
        new_value = new_value.encode("utf-8")
    buffer = key._value_buffer
    buffer.seek(0)
    buffer.truncate()
    if len(new_value) > key._max_buffer_size:
        buffer.rollover()  # straight to the file, not through memory first
    buffer.write(new_value)
    key.contentsize = len(new_value)


_MOTO_VALUE = FakeKey.__dict__["value"]
patch_value(
    s3_object_bodies, FakeKey, "value", property(_read_value, _write_value), was=_MOTO_VALUE
)


@patch(s3_object_bodies, S3Response, "get_object")
def get_object(original: Callable[..., Any], self: Any) -> Any:
    wanted = requested_range(self.headers.get("range"))
    if wanted is None or self._get_int_param("partNumber"):
        return original(self)
    token = _requested_range.set(wanted)
    try:
        status, headers, body = original(self)
    finally:
        _requested_range.reset(token)
    if status != 200 or not isinstance(body, ValueRange):
        return status, headers, body
    if body.first or body.last < body.total - 1:
        # A part of the object carries no checksum of the whole (as moto's own range answer).
        for name in [h for h in headers if h.lower().startswith("x-amz-checksum-")]:
            del headers[name]
    headers["content-range"] = f"bytes {body.first}-{body.last}/{body.total}"
    headers["content-length"] = str(len(body))
    # 206: moto's key_response cuts a range out of 200 answers only.
    return 206, headers, body


@patch(s3_object_bodies, S3Response, "_handle_encoded_body", wraps=False)
def _handle_encoded_body(self: Any, body: io.BufferedIOBase | bytes) -> bytes:
    """Replaces moto's decoder, whose ``decoded += chunk`` is the quadratic cost."""
    if not body:
        return b""
    stream: Any = io.BytesIO(body) if isinstance(body, bytes) else body
    # Each chunk: "<hex size>[;extensions]\r\n<data>\r\n"; a zero size ends the data (the
    # trailing checksum lines follow).
    chunks = []
    size = int(stream.readline().split(b";")[0].strip(), 16)
    while size > 0:
        chunks.append(stream.read(size))
        stream.readline()
        size = int(stream.readline().split(b";")[0].strip(), 16)
    return b"".join(chunks)


_READ_SIZE = 1024 * 1024


@patch(s3_object_bodies, MotoRequest, "from_primitives")
def from_primitives(  # noqa: PLR0917 - moto's signature
    original: Callable[..., Any], cls: Any, method: str, url: str, headers: Any, body: Any = None
) -> Any:
    if isinstance(body, AwsChunkedWrapper):
        # Read whole, the wrapper appends every chunk to what it has built so far.
        wrapper = body
        body = b"".join(iter(lambda: wrapper.read(_READ_SIZE), b""))
    return original(cls, method, url, headers, body)


s3_range_faults = Hook(
    "s3_range_faults",
    why="Fault injection: an armed s3_range_failure fault answers a ranged GetObject with 503 "
    "SlowDown or 500 InternalError, or sends fewer bytes than its Content-Length (a body that "
    "drops mid-stream); moto always answers in full.",
    upstream="no upstream issue found (moto never fails a GET; this is fault injection)",
)

# https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
_ERRORS = {
    "SlowDown": (503, "Please reduce your request rate."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
}


@patch(s3_range_faults, S3Response, "key_response")
def _key_response(
    original: Callable[..., Any], self: Any, request: Any, full_url: str, headers: Any
) -> Any:
    status, response_headers, body = original(self, request, full_url, headers)
    bindings = current()
    ranged = request.method == "GET" and status == 206 and request.headers.get("range")
    if bindings is None or not ranged:
        return status, response_headers, body
    kind = bindings.faults.take_s3_range_failure(full_url)
    if kind is None:
        return status, response_headers, body
    if kind == "truncated":
        # Content-Length still says the whole range: the reader sees the stream end early. On
        # AWS the transport reports the short body (IncompleteRead) before any checksum is
        # checked; in-process a checksum header would be checked first, so it goes.
        kept = {
            name: value
            for name, value in response_headers.items()
            if not name.lower().startswith("x-amz-checksum")
        }
        return status, kept, body[: len(body) // 2]
    code, message = _ERRORS[kind]
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{kind}</Code><Message>{message}</Message></Error>"
    )
    return code, {"Content-Type": "application/xml"}, xml


HOOKS = (s3_object_bodies, s3_range_faults)
