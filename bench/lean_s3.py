"""A lean S3 endpoint over TLS for the benchmarks, in its own process, objects in memory.

    .venv/bin/python bench/lean_s3.py --port PORT --cert server.crt --key server.key

It answers just what an item's data path sends: CreateBucket, PutObject, HeadObject, GetObject
(with ``Range`` and ``If-Match``), DeleteObject, and the multipart calls (create, UploadPart,
complete, abort). Every body that comes with a checksum header (``x-amz-checksum-crc32c``,
``-crc32``, or one in an ``aws-chunked`` trailer) is checked and refused with ``BadDigest``
when it does not match, as S3 does; a part of an upload created with a ``ChecksumAlgorithm``
must carry that checksum. Signatures are not checked. It exists so that a benchmark can show
the client's own cost, where moto's server (pure Python, far more work per request) would
set the pace; it is a benchmark's tool, not an emulator.
"""

from __future__ import annotations

import argparse
import base64
import ssl
import threading
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree

from awscrt import checksums

XML = "application/xml"
CHECKSUMS: dict[str, Callable[[bytes], int]] = {
    "crc32c": checksums.crc32c,
    "crc32": zlib.crc32,
}


@dataclass
class Upload:
    bucket: str
    key: str
    algorithm: str | None  # lower case, as in the header names
    parts: dict[int, tuple[str, bytes]] = field(default_factory=dict)  # number: (etag, data)


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buckets: set[str] = set()
        self.objects: dict[tuple[str, str], tuple[str, bytes]] = {}  # (bucket, key): (etag, data)
        self.uploads: dict[str, Upload] = {}


STORE = Store()


class S3Error(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def checksum_value(algorithm: str, data: bytes) -> str:
    return base64.b64encode(CHECKSUMS[algorithm](data).to_bytes(4, "big")).decode("ascii")


def entity_tag(data: bytes) -> str:
    """An ETag that changes with the content, shaped as S3's (32 hex digits in quotes); not
    an MD5, which would cost this endpoint more CPU than the client it measures."""
    return f'"{checksums.crc32c(data):08x}{len(data):024x}"'


def decode_aws_chunked(body: bytes) -> tuple[bytes, dict[str, str]]:
    """The payload of an unsigned ``aws-chunked`` body and its trailing headers."""
    pieces: list[bytes] = []
    position = 0
    while True:
        line_end = body.index(b"\r\n", position)
        size = int(body[position:line_end].split(b";", 1)[0], 16)
        position = line_end + 2
        if size == 0:
            break
        pieces.append(body[position : position + size])
        position += size + 2  # the data's own CRLF
    trailers = {}
    for line in body[position:].split(b"\r\n"):
        if b":" in line:
            name, value = line.split(b":", 1)
            trailers[name.decode().strip().lower()] = value.decode().strip()
    return b"".join(pieces), trailers


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections
    disable_nagle_algorithm = True  # headers and body go as separate writes

    def log_message(self, format: str, *args: object) -> None:
        return

    # -- request parts ----------------------------------------------------------------------

    def target(self) -> tuple[str, str, dict[str, str]]:
        parts = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(parts.query, True).items()}
        host = (self.headers.get("Host") or "").split(":", 1)[0]
        path = unquote(parts.path)
        if host.endswith(".localhost"):  # virtual-hosted style
            return host.removesuffix(".localhost"), path.lstrip("/"), query
        bucket, _, key = path.lstrip("/").partition("/")
        return bucket, key, query

    def body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or ""):
            data = self.read_http_chunks()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else b""
        sent = {
            name.removeprefix("x-amz-checksum-"): str(value)
            for name, value in self.headers.items()
            if name.lower().startswith("x-amz-checksum-") and name.lower() != "x-amz-checksum-mode"
        }
        sent = {name.lower(): value for name, value in sent.items()}
        if "aws-chunked" in (self.headers.get("Content-Encoding") or ""):
            data, trailers = decode_aws_chunked(data)
            for name, value in trailers.items():
                if name.startswith("x-amz-checksum-"):
                    sent[name.removeprefix("x-amz-checksum-")] = value
        self.checked: dict[str, str] = {}
        for algorithm, value in sent.items():
            if algorithm not in CHECKSUMS:
                continue
            if checksum_value(algorithm, data) != value:
                raise S3Error(400, "BadDigest", f"the {algorithm} checksum does not match")
            self.checked[algorithm] = value
        return data

    def read_http_chunks(self) -> bytes:
        """A body sent with ``Transfer-Encoding: chunked`` (botocore's for aws-chunked)."""
        pieces = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0], 16)
            if size == 0:
                break
            pieces.append(self.rfile.read(size))
            self.rfile.readline()  # the chunk's CRLF
        while self.rfile.readline().strip():  # HTTP trailers, then the empty line
            pass
        return b"".join(pieces)

    # -- responses --------------------------------------------------------------------------

    def reply(
        self,
        status: int,
        body: bytes | memoryview = b"",
        headers: dict[str, str] | None = None,
        *,
        send_body: bool = True,
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)

    def fail(self, error: S3Error) -> None:
        document = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{error.code}</Code>'
            f"<Message>{error}</Message></Error>"
        ).encode()
        self.reply(error.status, document, {"Content-Type": XML})

    def run(self, operation: Callable[[str, str, dict[str, str]], None]) -> None:
        try:
            operation(*self.target())
        except S3Error as error:
            if self.command == "HEAD":
                self.reply(error.status, send_body=False)
            else:
                self.fail(error)

    def do_PUT(self) -> None:
        self.run(self.put)

    def do_POST(self) -> None:
        self.run(self.post)

    def do_GET(self) -> None:
        self.run(self.get)

    def do_HEAD(self) -> None:
        self.run(self.get)

    def do_DELETE(self) -> None:
        self.run(self.delete)

    # -- operations -------------------------------------------------------------------------

    def echoed(self) -> dict[str, str]:
        return {f"x-amz-checksum-{name}": value for name, value in self.checked.items()}

    def put(self, bucket: str, key: str, query: dict[str, str]) -> None:
        data = self.body()
        if not key:
            with STORE.lock:
                STORE.buckets.add(bucket)
            self.reply(200, headers={"Location": f"/{bucket}"})
            return
        if bucket not in STORE.buckets:
            raise S3Error(404, "NoSuchBucket", f"no bucket {bucket}")
        etag = entity_tag(data)
        if "uploadId" in query:
            with STORE.lock:
                upload = STORE.uploads.get(query["uploadId"])
            if upload is None:
                raise S3Error(404, "NoSuchUpload", "no such upload")
            if upload.algorithm is not None and upload.algorithm not in self.checked:
                raise S3Error(400, "InvalidRequest", f"the part has no {upload.algorithm}")
            upload.parts[int(query["partNumber"])] = (etag, data)
        else:
            with STORE.lock:
                STORE.objects[bucket, key] = (etag, data)
        self.reply(200, headers={"ETag": etag, **self.echoed()})

    def post(self, bucket: str, key: str, query: dict[str, str]) -> None:
        data = self.body()
        if "uploads" in query:
            algorithm = self.headers.get("x-amz-checksum-algorithm")
            upload_id = uuid.uuid4().hex
            with STORE.lock:
                if bucket not in STORE.buckets:
                    raise S3Error(404, "NoSuchBucket", f"no bucket {bucket}")
                STORE.uploads[upload_id] = Upload(bucket, key, algorithm and algorithm.lower())
            document = (
                '<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult>'
                f"<Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>{upload_id}</UploadId>"
                "</InitiateMultipartUploadResult>"
            ).encode()
            self.reply(200, document, {"Content-Type": XML})
            return
        with STORE.lock:
            upload = STORE.uploads.pop(query.get("uploadId", ""), None)
        if upload is None:
            raise S3Error(404, "NoSuchUpload", "no such upload")
        listed = [
            (int(part.findtext("{*}PartNumber") or 0), part.findtext("{*}ETag") or "")
            for part in ElementTree.fromstring(data).iter()
            if part.tag.endswith("}Part") or part.tag == "Part"
        ]
        chosen = []
        for number, etag in listed:
            held = upload.parts.get(number)
            if held is None or held[0] != etag:
                raise S3Error(400, "InvalidPart", f"part {number} was not uploaded as listed")
            chosen.append(held)
        etag = f'{entity_tag("".join(tag for tag, _ in chosen).encode())[:-1]}-{len(chosen)}"'
        with STORE.lock:
            STORE.objects[bucket, key] = (etag, b"".join(data for _, data in chosen))
        document = (
            '<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult>'
            f"<Bucket>{bucket}</Bucket><Key>{key}</Key><ETag>{etag}</ETag>"
            "</CompleteMultipartUploadResult>"
        ).encode()
        self.reply(200, document, {"Content-Type": XML})

    def get(self, bucket: str, key: str, query: dict[str, str]) -> None:
        with STORE.lock:
            held = STORE.objects.get((bucket, key))
        if held is None:
            raise S3Error(404, "NoSuchKey", f"no key {key}")
        etag, data = held
        if_match = self.headers.get("If-Match")
        if if_match is not None and if_match != etag:
            raise S3Error(412, "PreconditionFailed", "the object's ETag is not If-Match's")
        headers = {"ETag": etag, "Accept-Ranges": "bytes"}
        requested = self.headers.get("Range")
        if requested is None or self.command == "HEAD":
            headers["Content-Type"] = "application/octet-stream"
            self.reply(200, memoryview(data), headers, send_body=self.command != "HEAD")
            return
        first_text, _, last_text = requested.removeprefix("bytes=").partition("-")
        first = int(first_text)
        last = min(int(last_text) if last_text else len(data) - 1, len(data) - 1)
        if first >= len(data):
            raise S3Error(416, "InvalidRange", "the range starts past the object's end")
        headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
        self.reply(206, memoryview(data)[first : last + 1], headers)

    def delete(self, bucket: str, key: str, query: dict[str, str]) -> None:
        with STORE.lock:
            if "uploadId" in query:
                if STORE.uploads.pop(query["uploadId"], None) is None:
                    raise S3Error(404, "NoSuchUpload", "no such upload")
            else:
                STORE.objects.pop((bucket, key), None)
        self.reply(204)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
