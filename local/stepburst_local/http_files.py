"""Serve a directory over HTTP on 127.0.0.1, as the sites that workloads download from do.

The demos and tests of download jobs (the ZTF alert tarballs) use it: no machine here reaches
the internet. It answers ``Range`` requests (206 with ``Content-Range``), as the real servers
do, and can drop a response's connection once after a number of bytes, to show that a
download resumes.
"""

from __future__ import annotations

import re
import threading
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
_COPY_CHUNK = 256 * 1024


class _Handler(SimpleHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(HTTPStatus.NOT_FOUND, "no such file")
            return
        size = path.stat().st_size
        start, end = 0, size - 1
        match = _RANGE.match(self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            if start >= size:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(HTTPStatus.OK)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        self.server.requests.append((self.path, start))
        drop_at = self.server.take_drop()
        with path.open("rb") as source:
            source.seek(start)
            remaining = end - start + 1
            sent = 0
            while remaining:
                chunk = source.read(min(_COPY_CHUNK, remaining))
                if drop_at is not None and sent + len(chunk) > drop_at:
                    self.wfile.write(chunk[: drop_at - sent])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
                remaining -= len(chunk)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        super().__init__(address, handler)
        self.requests: list[tuple[str, int]] = []
        self.drops: list[int] = []
        self._lock = threading.Lock()

    def take_drop(self) -> int | None:
        with self._lock:
            return self.drops.pop(0) if self.drops else None


class FileServer:
    """``with FileServer(directory) as server:`` serves it at ``server.url``."""

    def __init__(self, directory: Path) -> None:
        self._server = _Server(("127.0.0.1", 0), partial(_Handler, directory=str(directory)))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[tuple[str, int]]:
        """(path, first byte) of every GET served, in order."""
        return list(self._server.requests)

    def drop_next_response_after(self, byte_count: int) -> None:
        """Cut the connection of the next response once it has sent ``byte_count`` bytes."""
        self._server.drops.append(byte_count)

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
