"""What an object's first bytes say it is, and gzip read as a stream.

A JSONL job reads UTF-8 JSON lines, plain or gzip-compressed. Anything else (another
compression, an archive, a binary file) is named from its first bytes (its "magic number"), so
that its item fails with a cause that says what the object is instead of ending with every
line rejected. The suffix of a key is never trusted: ``x.jsonl`` may hold gzip, ``x.gz`` text.

gzip is decompressed piece by piece with a bounded output per step, so memory stays constant
whatever the ratio (a small object may expand a thousandfold). Several members one after the
other (``cat a.gz b.gz``, pigz, bgzip) read as one stream, and zero bytes after a member are
padding, as ``gzip -d`` reads them.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from stepburst.errors import StepburstError

# Enough for every signature below: a tar header's "ustar" magic sits at offset 257.
SNIFF_BYTES = 512
# The most decompressed bytes one step yields; the record processor takes any chunk size.
GUNZIP_PIECE = 1024 * 1024
# zlib's window bits for a gzip header and trailer around the deflate data (zlib manual).
_GZIP_WBITS = 16 + zlib.MAX_WBITS


@dataclass(frozen=True, slots=True)
class Format:
    """What an object holds: ``name`` for the ledger, ``description`` for a failure's cause."""

    name: str
    description: str


TEXT = Format("text", "text")
GZIP = Format("gzip", "gzip-compressed data")

# (offset, magic bytes, format): the signatures each format's specification gives.
_SIGNATURES: tuple[tuple[int, bytes, Format], ...] = (
    (0, b"\x1f\x8b\x08", GZIP),  # RFC 1952: ID1 ID2 and CM = 8 (deflate)
    (0, b"PK\x03\x04", Format("zip", "a zip archive")),
    (0, b"PK\x05\x06", Format("zip", "a zip archive")),  # an empty one
    (0, b"\xfd7zXZ\x00", Format("xz", "xz-compressed data")),
    (0, b"\x28\xb5\x2f\xfd", Format("zstd", "zstd-compressed data")),
    (0, b"\x04\x22\x4d\x18", Format("lz4", "lz4-compressed data")),
    (0, b"7z\xbc\xaf\x27\x1c", Format("7z", "a 7z archive")),
    (0, b"\x1f\x9d", Format("compress", "compress (.Z) data")),
    (257, b"ustar", Format("tar", "a tar archive")),
    (0, b"PAR1", Format("parquet", "a Parquet file")),
    (0, b"Obj\x01", Format("avro", "an Avro container file")),
    (0, b"%PDF-", Format("pdf", "a PDF document")),
    (0, b"\x89PNG\r\n\x1a\n", Format("png", "a PNG image")),
    (0, b"\xff\xd8\xff", Format("jpeg", "a JPEG image")),
    (0, b"\xff\xfe", Format("utf-16", "UTF-16 text (JSON lines must be UTF-8)")),
    (0, b"\xfe\xff", Format("utf-16", "UTF-16 text (JSON lines must be UTF-8)")),
)
_BZIP2 = Format("bzip2", "bzip2-compressed data")
# "BZh", the block size digit, then a block's magic (pi) or the end of stream's (sqrt(pi)).
_BZIP2_BLOCKS = (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")


class NotJsonLinesError(StepburstError):
    """An object a JSONL job cannot read: another format, an archive, binary data."""

    def __init__(self, name: str, description: str) -> None:
        self.description = description
        super().__init__(
            f"{name}: the object is {description}, not JSON lines; a JSONL job reads UTF-8 "
            "JSON lines, plain or gzip-compressed"
        )


class BadGzipError(StepburstError):
    """An object that starts as gzip but cannot be decompressed to its end."""


def identify(head: bytes) -> Format:
    """What an object starting with ``head`` (its first :data:`SNIFF_BYTES`) holds."""
    for offset, magic, found in _SIGNATURES:
        if head.startswith(magic, offset):
            return found
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[4:10] in _BZIP2_BLOCKS:
        return _BZIP2
    # JSON text never holds a raw NUL byte: not inside a string, not between values.
    nul = head.find(b"\x00")
    if nul >= 0:
        return Format("binary", f"binary data (a NUL byte at offset {nul})")
    return TEXT


def peek(chunks: Iterator[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """The first ``size`` bytes of ``chunks`` (fewer if it ends), and all its chunks again."""
    taken: list[bytes] = []
    total = 0
    for chunk in chunks:
        taken.append(chunk)
        total += len(chunk)
        if total >= size:
            break
    return b"".join(taken)[:size], itertools.chain(taken, chunks)


def gunzip(chunks: Iterable[bytes], name: str, piece_size: int = GUNZIP_PIECE) -> Iterator[bytes]:
    """Decompress the gzip stream in ``chunks``, yielding pieces of at most ``piece_size``.

    ``name`` names the object in errors: :class:`BadGzipError` when the data is not valid
    gzip or ends inside a member.
    """
    decompressor = zlib.decompressobj(_GZIP_WBITS)
    in_member = False
    for chunk in chunks:
        data = chunk
        while True:
            if not in_member:
                data = data.lstrip(b"\x00")
                if not data:
                    break
                if decompressor.eof:
                    decompressor = zlib.decompressobj(_GZIP_WBITS)
                in_member = True
            try:
                piece = decompressor.decompress(data, piece_size)
            except zlib.error as exc:
                raise BadGzipError(f"{name}: the object is not valid gzip: {exc}") from exc
            if piece:
                yield piece
            if decompressor.eof:
                in_member = False
                data = decompressor.unused_data
            else:
                data = decompressor.unconsumed_tail
                # A full piece may leave output inside zlib with no input left: ask again.
                if not data and len(piece) < piece_size:
                    break
    if in_member:
        raise BadGzipError(
            f"{name}: the object ends before the end of its gzip stream (a truncated upload?)"
        )


def json_lines(chunks: Iterable[bytes], name: str) -> tuple[Iterator[bytes], Format]:
    """The JSON-lines text of a whole object read from its first byte, and its format.

    gzip is decompressed; anything else that is not text raises :class:`NotJsonLinesError`,
    as does gzip around something that is not text (a ``.tar.gz``).
    """
    head, text = peek(iter(chunks), SNIFF_BYTES)
    found = identify(head)
    if found is TEXT:
        return text, TEXT
    if found is not GZIP:
        raise NotJsonLinesError(name, found.description)
    head, text = peek(gunzip(text, name), SNIFF_BYTES)
    inner = identify(head)
    if inner is not TEXT:
        raise NotJsonLinesError(name, f"{inner.description}, gzip-compressed")
    return text, GZIP
