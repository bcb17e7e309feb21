"""``stepburst sync``: copy a local directory to or from S3 in parallel, skipping what is unchanged.

Up: a file is uploaded unless an object of the same size already holds the same content (its
SHA-256, kept as object metadata on upload: with SSE-KMS an ETag is not the content's MD5).
With ``zip_each``, each file or directory that matches the pattern is uploaded as one zip
archive instead (``Dam*/Period*`` → ``Dam001/Period01.zip``), built with fixed timestamps so an
unchanged input zips to the same bytes and is skipped too.

Down: an object is downloaded unless the local file has its content (by the kept digest), or,
for objects without one, the same size and a modification time no older than the object's
(as ``aws s3 sync`` decides). With ``unzip``, each ``.zip`` is also unpacked into a directory of
its name without the suffix.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepburst import storage
from stepburst.errors import InvalidInputError
from stepburst.storage import DatedObject, S3Object

DEFAULT_THREADS = 10
_HASH_CHUNK = 1024 * 1024
# Zip entries carry this timestamp, so that the same files always zip to the same bytes.
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(slots=True)
class SyncResult:
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unzipped: list[str] = field(default_factory=list)
    bytes_copied: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "copied": len(self.copied),
            "skipped": len(self.skipped),
            "unzipped": len(self.unzipped),
            "bytes": self.bytes_copied,
        }


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or ("/" not in uri[5:].rstrip("/") and not uri[5:]):
        raise InvalidInputError("s3 location", f"{uri!r} is not s3://bucket/prefix")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise InvalidInputError("s3 location", f"{uri!r} has no bucket")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _local_files(root: Path) -> Iterator[Path]:
    for directory, _, names in os.walk(root):
        for name in sorted(names):
            yield Path(directory) / name


def zip_tree(source: Path, target: Path) -> None:
    """Zip a file or a directory (its paths relative to itself) with fixed timestamps."""
    files = [source] if source.is_file() else sorted(_local_files(source))
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            name = path.name if source.is_file() else path.relative_to(source).as_posix()
            info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())


def _matches(root: Path, pattern: str) -> list[Path]:
    """Files and directories under ``root`` whose relative path matches ``pattern``."""
    depth = pattern.count("/") + 1
    found = []
    for path in sorted(root.glob("/".join(["*"] * depth))):
        relative = path.relative_to(root).as_posix()
        if fnmatch.fnmatchcase(relative, pattern):
            found.append(path)
    return found


def sync_up(
    local: Path,
    bucket: str,
    prefix: str,
    *,
    threads: int = DEFAULT_THREADS,
    zip_each: str | None = None,
) -> SyncResult:
    if not local.is_dir():
        raise InvalidInputError("source", f"{local} is not a directory")
    existing = {obj.key: obj for obj in storage.iter_dated_objects(bucket, prefix)}
    result = SyncResult()
    with tempfile.TemporaryDirectory(prefix="stepburst-sync-") as scratch:
        uploads: list[tuple[str, Path]] = []
        if zip_each is None:
            for path in _local_files(local):
                uploads.append((prefix + path.relative_to(local).as_posix(), path))
        else:
            matched = _matches(local, zip_each)
            if not matched:
                raise InvalidInputError("--zip-each", f"nothing under {local} matches {zip_each!r}")
            for source in matched:
                relative = source.relative_to(local).as_posix()
                archive = Path(scratch) / (relative.replace("/", "__") + ".zip")
                zip_tree(source, archive)
                uploads.append((f"{prefix}{relative}.zip", archive))

        def upload(entry: tuple[str, Path]) -> tuple[str, int]:
            key, path = entry
            digest = file_digest(path)
            present = existing.get(key)
            size = path.stat().st_size
            if (
                present is not None
                and present.size == size
                and storage.content_digest(S3Object(bucket, key)) == digest
            ):
                return key, -1
            storage.put_file_with_digest(bucket, key, path, digest)
            return key, size

        _gather(upload, uploads, threads, result)
    return result


def sync_down(
    bucket: str,
    prefix: str,
    local: Path,
    *,
    threads: int = DEFAULT_THREADS,
    unzip: bool = False,
) -> SyncResult:
    local.mkdir(parents=True, exist_ok=True)
    objects = [obj for obj in storage.iter_dated_objects(bucket, prefix) if obj.key != prefix]
    result = SyncResult()

    def download(obj: DatedObject) -> tuple[str, int]:
        path = local / obj.key[len(prefix) :]
        if _unchanged(bucket, obj, path):
            return obj.key, -1
        path.parent.mkdir(parents=True, exist_ok=True)
        storage.download_file(S3Object(bucket, obj.key), path)
        os.utime(path, (obj.last_modified, obj.last_modified))
        return obj.key, obj.size

    _gather(download, objects, threads, result)
    if unzip:
        for obj in objects:
            if obj.key.endswith(".zip"):
                archive = local / obj.key[len(prefix) :]
                target = archive.with_suffix("")
                _safe_extract(archive, target)
                result.unzipped.append(str(target))
    return result


def _unchanged(bucket: str, obj: DatedObject, path: Path) -> bool:
    if not path.is_file() or path.stat().st_size != obj.size:
        return False
    kept = storage.content_digest(S3Object(bucket, obj.key))
    if kept is not None:
        return kept == file_digest(path)
    return path.stat().st_mtime >= obj.last_modified


def _safe_extract(archive: Path, target: Path) -> None:
    """Unzip, refusing entries that would land outside ``target`` (``../`` or absolute)."""
    root = target.resolve()
    with zipfile.ZipFile(archive) as opened:
        for name in opened.namelist():
            destination = (root / name).resolve()
            if root not in destination.parents and destination != root:
                raise InvalidInputError("zip", f"{archive.name} has an entry outside it: {name}")
        opened.extractall(root)


def _gather(
    work: Callable[[Any], tuple[str, int]],
    entries: Iterable[Any],
    threads: int,
    result: SyncResult,
) -> None:
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="sync") as pool:
        for key, size in pool.map(work, entries):
            if size < 0:
                result.skipped.append(key)
            else:
                result.copied.append(key)
                result.bytes_copied += size
