"""Unpack a day's alert tarball into S3, streaming: nothing is staged on local disk or EFS.

The tarball (7 MB to 73 GB) is read once from its URL and unpacked member by member. Small
members are uploaded by a bounded pool of threads while the stream goes on (an alert packet
is a few kB to a few MB; one upload after another spends its time waiting on S3); a large
member is streamed as a multipart upload. A connection that drops mid-download is resumed from
the byte it reached (HTTP Range), so a night's 73 GB is not read again; if the download still
fails, the item fails and its retry writes every member again under the same keys, so a
member is never stored twice. The item's ledger record keeps the member count and bytes, so a
day's archive can be checked without listing S3.
"""

from __future__ import annotations

import http.client
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from stepburst.storage import MultipartWriter, put_bytes

COPY_CHUNK = 8 * 1024 * 1024
DOWNLOAD_TIMEOUT_SECONDS = 60
# Members up to this size are read whole and uploaded by the pool; larger ones stream.
SMALL_MEMBER_BYTES = 8 * 1024 * 1024
UPLOAD_THREADS = 16
# What the pool may hold in memory at once: the stream waits beyond this.
MAX_BYTES_IN_FLIGHT = 128 * 1024 * 1024
RESUME_ATTEMPTS = 5
FIRST_RESUME_DELAY_SECONDS = 1.0
# A dropped connection shows as one of these while reading the body.
_DROPPED = (http.client.HTTPException, urllib.error.URLError, ConnectionError, TimeoutError)


class DownloadFailedError(Exception):
    """The download failed and could not be resumed."""


class ResumableDownload:
    """A read-only stream over an HTTP(S) URL that resumes a dropped connection.

    On a read that fails, it asks again for the bytes from where it stopped (``Range:
    bytes=N-``); a server that answers 200 instead of 206 is read past the bytes already
    given. ``RESUME_ATTEMPTS`` resumes in a row without progress fail the download.
    """

    def __init__(self, url: str, *, timeout: float = DOWNLOAD_TIMEOUT_SECONDS) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"URL_TEMPLATE must give an http(s) URL, not {url!r}")
        self.url = url
        self.timeout = timeout
        self.position = 0
        self.resumes = 0
        self._response: Any = None
        self._end: int | None = None
        self._open()

    def _open(self) -> None:
        headers = {"User-Agent": "stepburst"}
        if self.position:
            headers["Range"] = f"bytes={self.position}-"
        request = urllib.request.Request(self.url, headers=headers)
        response = urllib.request.urlopen(request, timeout=self.timeout)
        if self.position and response.status != 206:
            # No range support: read again from the start, up to where the stream was.
            skip = self.position
            while skip:
                skipped = response.read(min(skip, COPY_CHUNK))
                if not skipped:
                    raise DownloadFailedError(f"{self.url} ended before byte {self.position}")
                skip -= len(skipped)
        self._response = response
        length = response.headers.get("Content-Length")
        # Where the body ends: a shorter body is a dropped connection, not the end.
        self._end = self.position + int(length) if length is not None and length.isdigit() else None

    def read(self, size: int = -1) -> bytes:
        failures = 0
        while True:
            try:
                data: bytes = self._response.read(size)
                if not data and size != 0 and self._end is not None and self.position < self._end:
                    raise ConnectionError(f"the body ended at byte {self.position} of {self._end}")
            except _DROPPED as error:
                failures += 1
                if failures > RESUME_ATTEMPTS:
                    raise DownloadFailedError(
                        f"{self.url}: the download failed at byte {self.position} "
                        f"{failures} times in a row: {error}"
                    ) from error
                self._reopen(failures)
                continue
            self.position += len(data)
            return data

    def _reopen(self, failures: int) -> None:
        self.close()
        time.sleep(FIRST_RESUME_DELAY_SECONDS * 2 ** (failures - 1))
        try:
            self._open()
        except _DROPPED:
            self._response = _Broken()
        self.resumes += 1

    def close(self) -> None:
        if self._response is not None:
            self._response.close()

    def __enter__(self) -> ResumableDownload:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Broken:
    """A connection that could not be made again: the next read tries once more."""

    def read(self, size: int = -1) -> bytes:
        raise ConnectionError("the connection could not be made again")

    def close(self) -> None:
        return None


class MemberUploader:
    """Upload small objects with a bounded pool; ``submit`` waits while too much is in flight.

    The first failed upload is raised by the next ``submit`` or by ``close``.
    """

    def __init__(self, bucket: str, *, threads: int = UPLOAD_THREADS) -> None:
        self.bucket = bucket
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="member")
        self._room = threading.BoundedSemaphore(MAX_BYTES_IN_FLIGHT // (64 * 1024))
        self._futures: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._error: BaseException | None = None

    def submit(self, key: str, data: bytes) -> None:
        self._raise_failure()
        # One slot per 64 KiB (at least one), so many small members and a few large ones
        # are bounded alike.
        slots = max(1, len(data) // (64 * 1024))
        for _ in range(slots):
            self._room.acquire()
        future = self._pool.submit(put_bytes, self.bucket, key, data)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(lambda done: self._finished(done, slots))

    def _finished(self, future: Future[None], slots: int) -> None:
        for _ in range(slots):
            self._room.release()
        with self._lock:
            self._futures.discard(future)
            if future.exception() is not None and self._error is None:
                self._error = future.exception()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._raise_failure()

    def __enter__(self) -> MemberUploader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            return
        self.close()


def _member_path(name: str) -> str:
    """A member's name as a key suffix: without the ``./`` or ``/`` it may start with."""
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def unpack_tarball(day: str, params: Mapping[str, str]) -> dict[str, Any]:
    url = params["URL_TEMPLATE"].format(date=day)
    bucket = params["OUTPUT_BUCKET"]
    # The job's output key names the day's folder (ztf/alerts/date=<day>/).
    prefix = params["OUTPUT_PREFIX"]
    members = 0
    total = 0
    with (
        ResumableDownload(url) as download,
        tarfile.open(fileobj=download, mode="r|*") as archive,  # type: ignore[call-overload]
        MemberUploader(bucket) as uploader,
    ):
        for member in archive:
            if not member.isfile():
                continue
            source = archive.extractfile(member)
            if source is None:
                continue
            key = prefix + _member_path(member.name)
            if member.size <= SMALL_MEMBER_BYTES:
                uploader.submit(key, source.read())
            else:
                with MultipartWriter(
                    bucket, key, content_type="application/octet-stream"
                ) as target:
                    while chunk := source.read(COPY_CHUNK):
                        target.write(chunk)
            members += 1
            total += member.size
    return {
        "url": url,
        "members": members,
        "bytes": total,
        "prefix": prefix,
        "resumed": download.resumes,
    }
