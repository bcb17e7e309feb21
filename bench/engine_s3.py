"""S3 throughput of the local engine, as containers see it: over its HTTP endpoint.

    .venv/bin/python bench/engine_s3.py [--sizes-mb 60 210] [--chunk-mb 8] [--part-mb 16]

For each object size, against one local cloud, times:

1. a single ``put_object`` of the whole object, over HTTP and in-process (the engine's own
   uploads);
2. a multipart upload in ``--part-mb`` parts (create, parts, complete), as items write;
3. ranged GETs of ``--chunk-mb`` over the whole object, one after the other, as items read.

A ranged GET should cost what its range costs, whatever the object's size: the ranged reads'
MB/s at the largest size over that at the smallest (``read ratio``) should be about 1. Prints
MB/s for each and that ratio; it reports, it does not fail (but it checks every byte read back).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import time
from typing import Any

import boto3
from botocore.config import Config

from stepburst_local.cloud import LocalCloud

MB = 1_000_000
MiB = 1024 * 1024
BUCKET = "bench"


def http_client(cloud: LocalCloud) -> Any:
    """An S3 client over the engine's HTTP endpoint, as a container's."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=cloud.endpoint_url,
        region_name=cloud.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 2}),
    )


def put_whole(s3: Any, key: str, body: bytes) -> float:
    started = time.perf_counter()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return time.perf_counter() - started


def put_multipart(s3: Any, key: str, body: bytes, part_size: int) -> float:
    started = time.perf_counter()
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    parts = []
    view = memoryview(body)
    for number, offset in enumerate(range(0, len(body), part_size), start=1):
        answer = s3.upload_part(
            Bucket=BUCKET,
            Key=key,
            UploadId=upload,
            PartNumber=number,
            Body=bytes(view[offset : offset + part_size]),
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    return time.perf_counter() - started


def read_ranges(s3: Any, key: str, size: int, chunk: int) -> tuple[float, str]:
    digest = hashlib.sha256()
    started = time.perf_counter()
    for offset in range(0, size, chunk):
        last = min(offset + chunk, size) - 1
        answer = s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={offset}-{last}")
        digest.update(answer["Body"].read())
    return time.perf_counter() - started, digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[60, 210])
    parser.add_argument("--chunk-mb", type=float, default=8)
    parser.add_argument("--part-mb", type=float, default=16)
    args = parser.parse_args()
    chunk = max(1, int(args.chunk_mb * MiB))
    part_size = max(5 * MiB, int(args.part_mb * MiB))
    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(
        f"local engine S3 over HTTP: {args.chunk_mb:g} MiB ranged GETs, {args.part_mb:g} MiB parts"
    )
    print(f"python {platform.python_version()} on {platform.machine()}, load average {load}")
    read_rates: list[float] = []
    with LocalCloud() as cloud:
        cloud.client("s3").create_bucket(Bucket=BUCKET)
        s3 = http_client(cloud)
        for size_mb in args.sizes_mb:
            size = max(1, int(size_mb * MB))
            body = os.urandom(size)
            expected = hashlib.sha256(body).hexdigest()
            whole = put_whole(s3, f"whole-{size}", body)
            # The engine's own uploads (a sample's input, a test's fixtures) stay in-process.
            in_process = put_whole(cloud.client("s3"), f"in-process-{size}", body)
            multipart = put_multipart(s3, f"parts-{size}", body, part_size)
            del body
            elapsed, digest = read_ranges(s3, f"parts-{size}", size, chunk)
            if digest != expected:
                print(f"{size_mb:g} MB: the ranged reads returned other bytes", file=sys.stderr)
                return 1
            megabytes = size / MB
            read_rates.append(megabytes / elapsed)
            print(
                f"  {size_mb:7g} MB  put_object {megabytes / whole:7.1f} MB/s  "
                f"in-process put_object {megabytes / in_process:7.1f} MB/s  "
                f"multipart {megabytes / multipart:7.1f} MB/s  "
                f"ranged reads {megabytes / elapsed:7.1f} MB/s"
            )
    print(
        f"read ratio (largest / smallest object): {read_rates[-1] / read_rates[0]:.2f} "
        "(about 1 when a ranged GET reads only its range)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
