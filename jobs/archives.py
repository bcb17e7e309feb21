"""Unpack a day's alert tarball into S3, streaming: nothing is staged on local disk or EFS.

The tarball (7 MB to 73 GB) is read once from its URL and unpacked member by member; each
member goes straight to the output bucket (multipart for large ones). The item's ledger
record keeps the member count and bytes, so a day's archive can be checked without listing S3.
"""

from __future__ import annotations

import tarfile
import urllib.request
from collections.abc import Mapping
from typing import Any

from stepburst.storage import MultipartWriter

COPY_CHUNK = 8 * 1024 * 1024
DOWNLOAD_TIMEOUT_SECONDS = 60


def unpack_tarball(day: str, params: Mapping[str, str]) -> dict[str, Any]:
    url = params["URL_TEMPLATE"].format(date=day)
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"URL_TEMPLATE must give an http(s) URL, not {url!r}")
    bucket = params["OUTPUT_BUCKET"]
    # The job's output key names the day's folder (ztf/alerts/date=<day>/).
    prefix = params["OUTPUT_PREFIX"]
    members = 0
    total = 0
    request = urllib.request.Request(url, headers={"User-Agent": "stepburst"})
    with (
        urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
        tarfile.open(fileobj=response, mode="r|*") as archive,
    ):
        for member in archive:
            if not member.isfile():
                continue
            source = archive.extractfile(member)
            if source is None:
                continue
            with MultipartWriter(
                bucket, prefix + member.name.lstrip("/"), content_type="application/octet-stream"
            ) as target:
                while chunk := source.read(COPY_CHUNK):
                    target.write(chunk)
            members += 1
            total += member.size
    return {"url": url, "members": members, "bytes": total, "prefix": prefix}
