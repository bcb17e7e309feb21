"""The full JSONL item path against a local S3 endpoint served over TLS, against local files.

    .venv/bin/python bench/item_path_tls.py [--size-mb 64] [--repeat 2] [--data-dir DIR]
                                            [--endpoint lean|moto|both]

Starts each S3 endpoint in its own process on 127.0.0.1 with a self-signed certificate made for
the run (``bench/s3_endpoints.py``), points the product's clients at it (``AWS_ENDPOINT_URL``
and ``AWS_CA_BUNDLE``), uploads a Yelp-like file, then times, best of ``--repeat``:

1. local-file processing: ``process_records`` over the file read from disk in 8 MiB chunks,
   output and rejects written to local files;
2. the item path: ``process_jsonl_range`` over the whole object (parallel ranged GETs ahead of
   the processor, multipart upload of the output in a bounded pool, a checksum on every part).

Two endpoints, each line of output naming the one it used:

- ``lean``: ``bench/lean_s3.py``, which serves ranged GETs from memory and checks the checksum
  of every part it is sent, doing little else, so the figures show the client's overhead;
- ``moto``: moto's server, pure Python, whose own cost on the same cores sets the pace.

For each it prints the wall time and the worker's own CPU seconds (this process: what the
worker pays for I/O whatever the endpoint) of both, the item path's overhead over local-file
processing in each (goal <= 15 %), the endpoint's CPU seconds, the time of the reads alone and
of the uploads alone (the endpoint's ceiling), how close the item comes to its slowest stage
(full overlap), and checks that the uploaded output is byte for byte the local one. Last, the
part checksums: CRC32 and CRC32C over 16 MiB in zlib and in the CRT, and one 16 MiB
``UploadPart`` with the checksum computed by botocore (sent aws-chunked, as HTTPS makes it)
and precomputed as the product sends it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from awscrt import checksums

from jsonl_throughput import CHUNK, DATA, MB, data_file
from s3_endpoints import Endpoint, self_signed_certificate, start_lean, start_moto

HERE = Path(__file__).resolve().parent
BUCKET_IN = "bench-input"
BUCKET_OUT = "bench-output"
FUNCTION = "yelp_scores:add_review_score"
PART = 16 * 1024 * 1024


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds
    cpu: float  # this process's CPU seconds, every thread
    endpoint_cpu: float = 0.0  # the endpoint process's CPU seconds

    @staticmethod
    def best(timings: list[Timing]) -> Timing:
        """The least of each figure over the rounds: on a shared machine every one of them
        only grows with the load (CPU seconds too, with the cache and the cores shared)."""
        return Timing(
            min(timing.wall for timing in timings),
            min(timing.cpu for timing in timings),
            min(timing.endpoint_cpu for timing in timings),
        )


def timed(work: Callable[[], object], endpoint: Endpoint | None = None) -> Timing:
    served = endpoint.cpu_seconds() if endpoint else 0.0
    cpu, started = time.process_time(), time.perf_counter()
    work()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Timing(wall, cpu, (endpoint.cpu_seconds() - served) if endpoint else 0.0)


def run_local(path: Path, out_dir: Path, transform: object) -> Path:
    from stepburst.records import Transform, process_records

    assert isinstance(transform, Transform)
    output = out_dir / "local-output.jsonl"
    rejects = out_dir / "local-rejects.jsonl"
    with path.open("rb") as source, output.open("wb") as out, rejects.open("wb") as bad:
        process_records(iter(lambda: source.read(CHUNK), b""), transform, out.write, bad.write)
    return output


def run_item(size: int, etag: str) -> None:
    from stepburst.jsonl import process_jsonl_range
    from stepburst.storage import S3Object

    process_jsonl_range(
        S3Object(BUCKET_IN, "input.jsonl"),
        0,
        size,
        FUNCTION,
        S3Object(BUCKET_OUT, "output.jsonl"),
        S3Object(BUCKET_OUT, "rejects.jsonl"),
        if_match=etag,
    )


def read_alone(size: int, etag: str) -> None:
    from stepburst.storage import S3Object, iter_range

    for _ in iter_range(S3Object(BUCKET_IN, "input.jsonl"), 0, size, if_match=etag):
        pass


def write_alone(data: bytes) -> None:
    from stepburst.storage import MultipartWriter

    with MultipartWriter(BUCKET_OUT, "write-timing.jsonl") as writer:
        for low in range(0, len(data), CHUNK):
            writer.write(data[low : low + CHUNK])


def upload(path: Path, bucket: str, key: str) -> str:
    from stepburst.storage import MultipartWriter

    with path.open("rb") as source, MultipartWriter(bucket, key) as writer:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            writer.write(chunk)
    assert writer.etag is not None
    return writer.etag


def time_upload_part(s3: Any, precomputed: bool, repeat: int) -> float:
    from stepburst.storage import CHECKSUM_ALGORITHM, part_checksum

    part = os.urandom(PART)
    created = s3.create_multipart_upload(
        Bucket=BUCKET_OUT, Key="part-timing", ChecksumAlgorithm=CHECKSUM_ALGORITHM
    )
    given = {f"Checksum{CHECKSUM_ALGORITHM}": part_checksum(part)} if precomputed else {}
    algorithm = {} if precomputed else {"ChecksumAlgorithm": CHECKSUM_ALGORITHM}
    best = float("inf")
    for number in range(1, repeat + 1):
        started = time.perf_counter()
        s3.upload_part(
            Bucket=BUCKET_OUT,
            Key="part-timing",
            UploadId=created["UploadId"],
            PartNumber=number,
            Body=part,
            **given,
            **algorithm,
        )
        best = min(best, time.perf_counter() - started)
    s3.abort_multipart_upload(Bucket=BUCKET_OUT, Key="part-timing", UploadId=created["UploadId"])
    return best


def checksum_costs() -> list[tuple[str, float]]:
    """CPU seconds of each checksum over one 16 MiB part, best of five."""
    part = os.urandom(PART)
    costs = []
    for name, function in (
        ("CRC32, zlib", zlib.crc32),
        ("CRC32, CRT", checksums.crc32),
        ("CRC32C, CRT", checksums.crc32c),
    ):
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            function(part)
            best = min(best, time.process_time() - started)
        costs.append((name, best))
    return costs


def line(label: str, name: str, size: int, timing: Timing) -> str:
    endpoint = f"; endpoint CPU {timing.endpoint_cpu:.2f} s" if timing.endpoint_cpu else ""
    return (
        f"  [{label}] {name:<28} {size / MB / timing.wall:7.1f} MB/s  ({timing.wall:.2f} s; "
        f"worker CPU {timing.cpu:.2f} s{endpoint})"
    )


def measure(endpoint: Endpoint, path: Path, work: Path, transform: object, repeat: int) -> None:
    from stepburst.aws import client

    os.environ["AWS_ENDPOINT_URL"] = endpoint.url  # the client factory keys its cache on it
    label = endpoint.name
    s3 = client("s3")
    for bucket in (BUCKET_IN, BUCKET_OUT):
        s3.create_bucket(Bucket=bucket)
    size = path.stat().st_size
    etag = upload(path, BUCKET_IN, "input.jsonl")
    print(f"[{label}] at {endpoint.url}, its own process")

    locals_: list[Timing] = []
    items: list[Timing] = []
    local_output = work / "local-output.jsonl"
    for _ in range(repeat):  # round-robin, so both see the same load
        locals_.append(timed(lambda: run_local(path, work, transform)))
        items.append(timed(lambda: run_item(size, etag), endpoint))
    local, item = Timing.best(locals_), Timing.best(items)
    uploaded = s3.get_object(Bucket=BUCKET_OUT, Key="output.jsonl")["Body"].read()
    if uploaded != local_output.read_bytes():
        raise SystemExit(f"[{label}] the uploaded output differs from the local one")
    data = local_output.read_bytes()
    read = Timing.best([timed(lambda: read_alone(size, etag), endpoint) for _ in range(repeat)])
    write = Timing.best([timed(lambda: write_alone(data), endpoint) for _ in range(repeat)])
    for name, timing in (
        ("local files -> local files", local),
        ("item path, S3 over TLS", item),
        ("ranged GETs alone", read),
        ("multipart upload alone", write),
    ):
        print(line(label, name, size, timing))
    wall_overhead = 100 * (item.wall / local.wall - 1)
    cpu_overhead = 100 * (item.cpu / local.cpu - 1)
    print(
        f"  [{label}] I/O overhead over local files: wall {wall_overhead:.1f} %  (goal <= 15 %); "
        f"worker CPU {cpu_overhead:.1f} %"
    )
    # Perfect overlap would make the item take as long as its slowest stage alone.
    slowest = max(local.wall, read.wall, write.wall)
    print(
        f"  [{label}] item path / its slowest stage alone: {item.wall / slowest:.2f}x  "
        "(1.00x = reads, processing and uploads fully overlapped)"
    )
    print(f"  [{label}] output uploaded identical to the local output")

    chunked = time_upload_part(s3, precomputed=False, repeat=repeat)
    header = time_upload_part(s3, precomputed=True, repeat=repeat)
    print(
        f"  [{label}] UploadPart of 16 MiB over TLS: checksum by botocore (aws-chunked) "
        f"{chunked * 1000:.0f} ms, precomputed as the product sends it {header * 1000:.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=64, help="input size (default 64)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best is kept")
    parser.add_argument("--data-dir", type=Path, default=DATA, help="where inputs are kept")
    parser.add_argument(
        "--endpoint", choices=("lean", "moto", "both"), default="both", help="default both"
    )
    args = parser.parse_args(argv)

    path = data_file(args.size_mb, 0, data_dir=args.data_dir)
    print(f"input: {path.stat().st_size / MB:.1f} MB; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="stepburst-tls-") as scratch:
        work = Path(scratch)
        cert, key = self_signed_certificate(work)
        # Set before the first client is built: the product reads them when it builds one.
        os.environ.update(
            AWS_CA_BUNDLE=str(cert),
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
        )
        sys.path.insert(0, str(HERE.parent / "jobs"))  # as the runtime's jobs layer does
        from stepburst.records import load_transform

        transform = load_transform(FUNCTION)
        starts = {"lean": start_lean, "moto": start_moto}
        chosen = ("lean", "moto") if args.endpoint == "both" else (args.endpoint,)
        for name in chosen:
            endpoint = starts[name]((cert, key))
            try:
                measure(endpoint, path, work, transform, args.repeat)
            finally:
                endpoint.stop()
    print("part checksums, CPU per 16 MiB part (this process):")
    for name, seconds in checksum_costs():
        print(f"  {name:<12} {seconds * 1000:6.2f} ms  ({PART / MB / seconds:8.0f} MB/s)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
