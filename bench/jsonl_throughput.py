"""Throughput of the JSONL item processor on one core, against two baselines.

    .venv/bin/python bench/jsonl_throughput.py [--size-mb 256] [--seed 0] [--repeat 3]

Generates (or reuses) a Yelp-like business file under bench/data/, loads it into memory in
8 MiB chunks (as the item reads S3), then times, on the same chunks:

1. the processor: ``process_records`` with the example job ``yelp_scores:add_review_score``,
   writing to a sink that only counts bytes;
2. the processor as it was before its batch fast path (``bench/reference_records.py``, a frozen
   copy), same job;
3. the same processor with a plain-form function doing the same thing (full decode/encode);
4. an orjson loop: ``orjson.loads`` each line, add ``review_score``, ``orjson.dumps`` it;
5. a stdlib loop: ``json.loads`` each line, add ``review_score``, ``json.dumps`` it;
6. a plain loop: split the lines and join them back (the floor of any line-oriented work).

Each is run ``--repeat`` times round-robin and the best time kept. Prints MB/s of input per
second of CPU time for each (wall time too) and the processor's ratios, and checks every
variant produced the same number of records.

Before timing, the processor's outputs and rejects are compared byte for byte with the frozen
reference's, for both forms of the function, on the timed file and on a file with about 2 %
bad lines mixed in: a difference exits non-zero. Timings are reported, never enforced.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import platform
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import orjson

import reference_records
from stepburst.records import RecordStats, Transform, as_transform, process_records
from stepburst_local.samples import write_business_file

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
CHUNK = 8 * 1024 * 1024
MB = 1_000_000


def data_file(size_mb: float, seed: int, bad_fraction: float = 0.0, data_dir: Path = DATA) -> Path:
    bad = f"-bad{bad_fraction:g}" if bad_fraction else ""
    path = data_dir / f"yelp-business-{size_mb:g}mb-seed{seed}{bad}.jsonl"
    target = int(size_mb * MB)
    # write_business_file stops at the first whole line past the target.
    if path.exists() and target <= path.stat().st_size < target + 64 * 1024:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    partial = path.with_suffix(".partial")
    lines = write_business_file(partial, target, seed=seed, bad_fraction=bad_fraction)
    partial.replace(path)
    print(
        f"generated {path}: {path.stat().st_size / MB:.1f} MB, "
        f"{lines:,} lines in {time.perf_counter() - started:.1f} s"
    )
    return path


def load_chunks(path: Path) -> list[bytes]:
    chunks = []
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            chunks.append(chunk)
    return chunks


def iter_lines(chunks: Iterable[bytes]) -> Iterable[list[bytes]]:
    """Whole lines per chunk, carrying a partial line over (as the processor does)."""
    carry = b""
    for chunk in chunks:
        lines = chunk.split(b"\n")
        lines[0] = carry + lines[0]
        carry = lines.pop()
        yield lines
    if carry:
        yield [carry]


class Sink:
    def __init__(self) -> None:
        self.bytes = 0
        self.writes = 0

    def __call__(self, data: bytes) -> None:
        self.bytes += len(data)
        self.writes += 1


def run_processor(
    chunks: list[bytes], function: Any, process: Any = process_records
) -> tuple[int, int]:
    sink = Sink()
    rejects = Sink()
    stats: RecordStats = process(chunks, function, sink, rejects)
    if stats.rejects:
        raise SystemExit(f"unexpected rejects in generated data: {stats.reject_errors}")
    return stats.records, sink.bytes


class Digest:
    """A sink that keeps a hash of what it is given, and its size."""

    def __init__(self) -> None:
        self.hash = hashlib.blake2b()
        self.bytes = 0

    def __call__(self, data: bytes) -> None:
        self.hash.update(data)
        self.bytes += len(data)

    def __repr__(self) -> str:
        return f"{self.bytes} bytes, blake2b {self.hash.hexdigest()[:16]}"


def same_as_reference(chunks: list[bytes], transform: Transform) -> str | None:
    """None when the processor writes what the frozen reference writes, else the difference."""
    written: list[tuple[Digest, Digest, dict[str, Any]]] = []
    for process in (process_records, reference_records.process_records):
        output, rejects = Digest(), Digest()
        stats = process(chunks, transform, output, rejects)
        written.append((output, rejects, stats.as_dict()))
    (output, rejects, stats), (want_output, want_rejects, want_stats) = written
    if (repr(output), repr(rejects), stats) != (repr(want_output), repr(want_rejects), want_stats):
        return (
            f"{transform.reference}: output {output!r} vs {want_output!r}, rejects {rejects!r} "
            f"vs {want_rejects!r}, stats {stats} vs {want_stats}"
        )
    return None


def verify(files: list[Path], transforms: list[Transform]) -> None:
    """Compare with the reference on each file, in 8 MiB chunks and in uneven small ones."""
    for path in files:
        chunks = load_chunks(path)
        data = b"".join(chunks)
        uneven = [data[low : low + 65_537] for low in range(0, min(len(data), 4 * MB), 65_537)]
        for transform in transforms:
            for pieces in (chunks, uneven):
                difference = same_as_reference(pieces, transform)
                if difference is not None:
                    raise SystemExit(f"{path.name}: differs from the reference: {difference}")
        print(f"  identical to the reference: {path.name} ({path.stat().st_size / MB:.1f} MB)")


def run_stdlib(chunks: list[bytes]) -> tuple[int, int]:
    sink = Sink()
    records = 0
    for lines in iter_lines(chunks):
        out = []
        for line in lines:
            record = json.loads(line)
            record["review_score"] = record["stars"] * record["review_count"]
            out.append(json.dumps(record))
        out.append("")
        records += len(out) - 1
        sink("\n".join(out).encode())
    return records, sink.bytes


def run_orjson(chunks: list[bytes]) -> tuple[int, int]:
    sink = Sink()
    records = 0
    for lines in iter_lines(chunks):
        out = []
        for line in lines:
            record = orjson.loads(line)
            record["review_score"] = record["stars"] * record["review_count"]
            out.append(orjson.dumps(record))
        out.append(b"")
        records += len(out) - 1
        sink(b"\n".join(out))
    return records, sink.bytes


def run_decode_only(chunks: list[bytes], transform: Transform) -> tuple[int, int]:
    """The processor's validation floor: msgspec decoding each chunk's lines, nothing else."""
    assert transform.adder is not None
    decode_lines = transform.adder.decoder.decode_lines
    records = 0
    for lines in iter_lines(chunks):
        lines.append(b"")
        records += len(decode_lines(b"\n".join(lines)))
    return records, 0


def run_decode_array(chunks: list[bytes], transform: Transform) -> tuple[int, int]:
    """The other way to decode many lines per call: each chunk's lines joined by commas into
    one JSON array, decoded as a list of the function's struct."""
    assert transform.adder is not None
    decode = msgspec.json.Decoder(list[transform.adder.decoder.type]).decode
    records = 0
    for lines in iter_lines(chunks):
        records += len(decode(b"".join((b"[", b",".join(lines), b"]"))))
    return records, 0


def run_plain(chunks: list[bytes]) -> tuple[int, int]:
    sink = Sink()
    records = 0
    for lines in iter_lines(chunks):
        out = list(lines)
        out.append(b"")
        records += len(out) - 1
        sink(b"\n".join(out))
    return records, sink.bytes


def plain_review_score(record: dict[str, Any]) -> dict[str, Any]:
    record["review_score"] = record["stars"] * record["review_count"]
    return record


def measure(
    size: int, jobs: dict[str, Callable[[], tuple[int, int]]], repeat: int
) -> dict[str, float]:
    """Best MB/s of each job over ``repeat`` round-robin rounds (robust to a noisy machine).

    Rates are per second of the process's CPU time: every job is single-threaded, and on a
    shared machine its wall time counts the other processes' turns too (also printed).
    """
    best: dict[str, float] = {}
    wall: dict[str, float] = {}
    results: dict[str, tuple[int, int]] = {}
    for _ in range(repeat):
        for name, job in jobs.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            results[name] = job()
            seconds = time.process_time() - cpu_started
            best[name] = min(best.get(name, seconds), seconds)
            elapsed = time.perf_counter() - started
            wall[name] = min(wall.get(name, elapsed), elapsed)
    rates = {}
    for name, seconds in best.items():
        records, written = results[name]
        rates[name] = size / MB / seconds
        print(
            f"  {name:<46} {rates[name]:8.1f} MB/s  ({seconds:6.2f} s CPU, "
            f"{wall[name]:6.2f} s wall, {records:,} records, {written / MB:.1f} MB out)"
        )
    counts = {records for records, _ in results.values()}
    if len(counts) != 1:
        raise SystemExit(f"record counts differ: {results}")
    return rates


def example_job_function() -> Any:
    """The shipped job's function, loaded from jobs/ as the runtime's jobs layer would."""
    return load_module("yelp_scores", HERE.parent / "jobs" / "yelp_scores.py").add_review_score


def load_module(name: str, path: Path) -> ModuleType:
    """Import a file as module ``name``, registered in ``sys.modules`` as an import would be
    (msgspec resolves a Struct's annotations through its module there)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=256, help="input size (default 256)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is kept")
    parser.add_argument("--data-dir", type=Path, default=DATA, help="where inputs are kept")
    args = parser.parse_args(argv)

    example = as_transform(example_job_function(), "yelp_scores:add_review_score")
    plain = as_transform(plain_review_score, "bench:plain_review_score")

    path = data_file(args.size_mb, args.seed, data_dir=args.data_dir)
    with_bad_lines = data_file(
        min(args.size_mb, 16), args.seed, bad_fraction=0.02, data_dir=args.data_dir
    )
    samples = HERE.parent / "samples" / "yelp_businesses.jsonl"
    verify([path, with_bad_lines, samples], [example, plain])
    chunks = load_chunks(path)
    size = sum(map(len, chunks))
    print(
        f"input: {size / MB:.1f} MB in {len(chunks)} chunks of {CHUNK // (1024 * 1024)} MiB; "
        f"Python {platform.python_version()} on {platform.machine()}, one core"
    )

    rates = measure(
        size,
        {
            "processor (example job, field adder)": lambda: run_processor(chunks, example),
            "reference processor (before, same job)": lambda: run_processor(
                chunks, example, reference_records.process_records
            ),
            "processor (same function, plain form)": lambda: run_processor(chunks, plain),
            "orjson loads + dumps per line": lambda: run_orjson(chunks),
            "stdlib json.loads + json.dumps per line": lambda: run_stdlib(chunks),
            "plain line read + write": lambda: run_plain(chunks),
            "msgspec decode_lines alone (validation floor)": lambda: run_decode_only(
                chunks, example
            ),
            "msgspec decode of lines joined as an array": lambda: run_decode_array(chunks, example),
        },
        args.repeat,
    )
    processor, before, plain_form, orjson_loop, stdlib, floor, decode_only, array = rates.values()
    print(f"  processor / plain read+write: {processor / floor:.2f}x  (target >= 0.8x)")
    print(f"  processor / stdlib: {processor / stdlib:.2f}x  (target >= 10x)")
    print(f"  processor / orjson loop: {processor / orjson_loop:.2f}x")
    print(f"  processor / reference (before): {processor / before:.2f}x")
    print(f"  plain-form processor / stdlib: {plain_form / stdlib:.2f}x")
    print(f"  decode_lines alone / plain read+write: {decode_only / floor:.2f}x")
    print(f"  decode_lines / lines decoded as one array: {decode_only / array:.2f}x")
    # Figures are reported, not enforced: this machine is shared and timings are noisy.
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
