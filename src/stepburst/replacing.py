"""``output.replace``: a run replaces what earlier runs wrote under its folder.

Write first, then remove what is left over — never delete first. Plan lists the run's folder
before any item writes (its key, ETag and last-modified time, kept in the work bucket); after
the run succeeds, Finalize deletes each listed object that nobody rewrote since (same ETag and
same time). A reader of the folder therefore always sees whole objects: the earlier runs'
until the items overwrite them, then this run's; objects of an earlier run that this run did
not write again stay until the run has succeeded, then go. A run that fails deletes nothing,
so a failed re-run never loses the day that was there.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from stepburst import storage
from stepburst.layout import replace_snapshot_key
from stepburst.observability import logger
from stepburst.settings import Settings


def snapshot(settings: Settings, run_id: str, prefix: str) -> int:
    """List the run's folder before it writes anything; how many objects were there."""
    count = 0
    key = replace_snapshot_key(run_id)
    with storage.MultipartWriter(settings.work_bucket, key) as writer:
        listed_at = datetime.now(UTC).isoformat()
        writer.write(orjson.dumps({"prefix": prefix, "listed_at": listed_at}) + b"\n")
        for entry in storage.iter_objects(settings.output_bucket, prefix):
            writer.write(
                orjson.dumps({"key": entry.key, "etag": entry.etag, "modified": entry.modified})
                + b"\n"
            )
            count += 1
    logger.info("folder listed before replacing", extra={"run_id": run_id, "objects": count})
    return count


def remove_replaced(settings: Settings, run_id: str) -> int:
    """Delete the objects of earlier runs that this (successful) run did not rewrite."""
    lines = storage.iter_lines(settings.work_bucket, replace_snapshot_key(run_id))
    header = orjson.loads(next(lines))
    before = {}
    for line in lines:
        entry = orjson.loads(line)
        before[str(entry["key"])] = (str(entry["etag"]), str(entry["modified"]))
    if not before:
        return 0
    # S3 dates objects to the second: an object this run rewrote with the same bytes within
    # the second of the listing looks unchanged, so one dated that second or later is kept.
    listed_at = header.get("listed_at")
    cutoff = datetime.fromisoformat(str(listed_at)).replace(microsecond=0) if listed_at else None

    def older(modified: str) -> bool:
        return cutoff is None or not modified or datetime.fromisoformat(modified) < cutoff

    stale = [
        entry.key
        for entry in storage.iter_objects(settings.output_bucket, str(header["prefix"]))
        if before.get(entry.key) == (entry.etag, entry.modified) and older(entry.modified)
    ]
    deleted = storage.delete_objects(settings.output_bucket, stale)
    logger.info("earlier runs' objects removed", extra={"run_id": run_id, "deleted": deleted})
    return deleted
