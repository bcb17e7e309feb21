"""What an object's first bytes say it is, and gzip decompressed as a stream."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepburst.formats import (
    GZIP,
    SNIFF_BYTES,
    TEXT,
    BadGzipError,
    NotJsonLinesError,
    gunzip,
    identify,
    json_lines,
    peek,
)

pytestmark = pytest.mark.unit

LINES = b"".join(b'{"n": %d, "name": "caf\xc3\xa9 %d"}\n' % (n, n) for n in range(5000))


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    return (data[start : start + size] for start in range(0, len(data), size))


def zipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.jsonl", data)
    return buffer.getvalue()


def tarred(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("a.jsonl")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (LINES, "text"),
        (b"", "text"),
        (b"name,stars\nshop,4\n", "text"),
        (b"\xef\xbb\xbf{}\n", "text"),  # a UTF-8 byte order mark is still text
        (gzip.compress(LINES, mtime=0), "gzip"),
        (zipped(LINES), "zip"),
        (zipped(b"")[:4], "zip"),
        (bz2.compress(LINES), "bzip2"),
        (bz2.compress(b""), "bzip2"),
        (lzma.compress(LINES), "xz"),
        (b"\x28\xb5\x2f\xfd\x00\x58", "zstd"),
        (tarred(LINES), "tar"),
        (b"PAR1\x15\x04", "parquet"),
        (b"%PDF-1.7\n", "pdf"),
        ("{}\n".encode("utf-16"), "utf-16"),
        (b"{\x00}\x00", "binary"),
        (bytes(range(256)), "binary"),
    ],
    ids=lambda value: value if isinstance(value, str) else "data",
)
def test_identify_names_what_the_first_bytes_say(data: bytes, name: str) -> None:
    assert identify(data[:SNIFF_BYTES]).name == name


def test_text_that_only_looks_like_a_signature_stays_text() -> None:
    assert identify(b"BZh is how bzip2 starts\n") is TEXT
    assert identify(b'{"magic": "PK\\u0003\\u0004"}\n') is TEXT


def test_binary_names_where_it_found_a_nul() -> None:
    assert identify(b"abc\x00").description == "binary data (a NUL byte at offset 3)"


def test_peek_gives_back_every_chunk() -> None:
    chunks = iter([b"ab", b"", b"cdef", b"gh"])
    head, rest = peek(chunks, 3)
    assert head == b"abc"
    assert b"".join(rest) == b"abcdefgh"
    head, rest = peek(iter([b"x"]), 3)
    assert (head, list(rest)) == (b"x", [b"x"])


@settings(max_examples=40, deadline=None)
@given(size=st.integers(min_value=1, max_value=5000), piece=st.integers(min_value=1, max_value=7))
def test_gunzip_is_the_same_whatever_the_chunks(size: int, piece: int) -> None:
    compressed = gzip.compress(LINES, mtime=0)
    out = list(gunzip(pieces(compressed, size), "s3://b/k", piece_size=piece * 997))
    assert b"".join(out) == LINES
    assert max(map(len, out)) <= piece * 997


def test_gunzip_reads_every_member_and_skips_zero_padding() -> None:
    members = (
        gzip.compress(LINES[:1000], mtime=0) + gzip.compress(LINES[1000:], mtime=0) + bytes(64)
    )
    assert b"".join(gunzip(pieces(members, 100), "k")) == LINES
    with gzip.open(io.BytesIO(members)) as reference:
        assert reference.read() == LINES


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (gzip.compress(LINES, mtime=0)[:-9], "ends before the end of its gzip stream"),
        (gzip.compress(LINES, mtime=0)[:10], "ends before the end of its gzip stream"),
        (gzip.compress(LINES, mtime=0) + b"trailing text", "not valid gzip"),
        (gzip.compress(LINES, mtime=0)[:200] + bytes(100) + b"\xff" * 300, "not valid gzip"),
    ],
    ids=["cut-in-data", "cut-in-header", "trailing-text", "corrupt-data"],
)
def test_broken_gzip_is_an_error_naming_the_object(data: bytes, message: str) -> None:
    with pytest.raises(BadGzipError, match=message) as raised:
        b"".join(gunzip(pieces(data, 64), "s3://in/a.jsonl.gz"))
    assert str(raised.value).startswith("s3://in/a.jsonl.gz: ")


def test_a_corrupt_checksum_is_found() -> None:
    data = bytearray(gzip.compress(LINES, mtime=0))
    data[-8] ^= 0xFF  # the CRC-32 of the trailer
    with pytest.raises(BadGzipError, match="not valid gzip"):
        b"".join(gunzip([bytes(data)], "k"))


def test_gunzip_memory_stays_flat_whatever_the_expansion() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    line = b'{"padding": "' + b"a" * 200 + b'"}\n'
    compressed = b"".join(
        [*(compressor.compress(line * 4096) for _ in range(256)), compressor.flush()]
    )
    expanded = len(line) * 4096 * 256
    assert expanded > 200 * 1024 * 1024
    assert expanded / len(compressed) > 200
    tracemalloc.start()
    try:
        total = sum(len(piece) for piece in gunzip(pieces(compressed, 64 * 1024), "k"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == expanded
    assert peak < 4 * 1024 * 1024


def test_json_lines_passes_text_through_untouched() -> None:
    chunks = list(pieces(LINES, 100))
    text, found = json_lines(iter(chunks), "k")
    assert found is TEXT
    assert list(text) == chunks


def test_json_lines_decompresses_gzip() -> None:
    text, found = json_lines(pieces(gzip.compress(LINES, mtime=0), 333), "k")
    assert found is GZIP
    assert b"".join(text) == LINES


@pytest.mark.parametrize(
    ("data", "described"),
    [
        (zipped(LINES), "a zip archive"),
        (lzma.compress(LINES), "xz-compressed data"),
        (gzip.compress(tarred(LINES), mtime=0), "a tar archive, gzip-compressed"),
        (
            gzip.compress(bytes(1000), mtime=0),
            "binary data (a NUL byte at offset 0), gzip-compressed",
        ),
    ],
    ids=["zip", "xz", "tar.gz", "binary.gz"],
)
def test_json_lines_refuses_what_is_not_json_lines(data: bytes, described: str) -> None:
    with pytest.raises(NotJsonLinesError) as raised:
        json_lines(pieces(data, 100), "s3://in/a.jsonl")
    assert str(raised.value) == (
        f"s3://in/a.jsonl: the object is {described}, not JSON lines; a JSONL job reads "
        "UTF-8 JSON lines, plain or gzip-compressed"
    )
