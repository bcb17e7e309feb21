"""How a JSONL item scales from one process to one per vCPU.

    .venv/bin/python bench/two_core_scaling.py [--size-mb 128] [--processes 2] [--repeat 2]

Two measures, each best of ``--repeat``:

1. processing: the file split into ``--processes`` newline-aligned sub-ranges (as an item on
   several vCPUs splits its range), each processed by ``process_records`` in its own spawned
   process from memory, against one process doing the whole file. Timed from when every
   process holds its bytes to when the last one ends, so the figure is the vCPUs' scaling
   (goal >= 1.8x on two idle cores); the processes' start-up is reported apart.
2. start-up included, as an item runs: a warm parent starts the other processes (forked from
   the fork server, which the first round starts) and processes the first share itself at
   once (larger by the item's head start, at most half the file) while they start and read
   their shares; timed from the parent's first step to the last process's end, against the
   parent alone on the whole file, in wall time and in CPU seconds (each child's counted from
   its start, the CPU-bound figure being what two idle cores would give);
3. the item path: ``process_jsonl_range_on_cpus`` against moto's server (its own process, over
   HTTP) with one process and with ``--processes``, the outputs compared byte for byte. moto
   serves every byte in Python on the same machine, so this figure is bounded by it.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from jsonl_throughput import CHUNK, DATA, MB, data_file
from s3_endpoints import start_moto

HERE = Path(__file__).resolve().parent
FUNCTION = "yelp_scores:add_review_score"
BUCKET = "bench-scaling"


def sub_ranges(data: bytes, count: int) -> list[tuple[int, int]]:
    """``count`` newline-aligned ranges of ``data`` (fewer if lines are long)."""
    bounds = [0]
    for index in range(1, count):
        cut = data.find(b"\n", index * len(data) // count - 1)
        if cut < 0 or cut + 1 <= bounds[-1]:
            continue
        bounds.append(cut + 1)
    bounds.append(len(data))
    return list(itertools.pairwise(bounds))


def process_share(
    path: str, start: int, end: int, ready: object, go: object
) -> tuple[float, float, int, float]:
    """In a child: load bytes ``[start, end)`` in 8 MiB chunks, wait for the others, process.

    Returns the wall-clock start and end of the processing, the records written and the CPU
    seconds the processing took (on a loaded machine, less than its wall time).
    """
    sys.path.insert(0, str(HERE.parent / "jobs"))  # as the runtime's jobs layer does
    from stepburst.records import load_transform, process_records

    transform = load_transform(FUNCTION)
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    chunks = [data[low : low + CHUNK] for low in range(0, len(data), CHUNK)]
    ready.put(os.getpid())  # type: ignore[attr-defined]
    go.wait()  # type: ignore[attr-defined]
    began, cpu_began = time.time(), time.process_time()
    stats = process_records(chunks, transform, lambda _: None, lambda _: None)
    return began, time.time(), stats.records, time.process_time() - cpu_began


def time_processing(path: Path, count: int) -> tuple[float, float, int, list[float]]:
    """Seconds of processing on ``count`` processes, seconds to start them, records, and
    each process's CPU seconds."""
    data = path.read_bytes()
    shares = sub_ranges(data, count)
    del data
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    ready = manager.Queue()
    go = manager.Event()
    started = time.perf_counter()
    with ProcessPoolExecutor(len(shares), mp_context=context) as pool:
        futures = [
            pool.submit(process_share, str(path), low, high, ready, go) for low, high in shares
        ]
        for _ in shares:
            ready.get(timeout=600)
        startup = time.perf_counter() - started
        go.set()
        results = [future.result() for future in futures]
    manager.shutdown()
    first = min(began for began, _, _, _ in results)
    last = max(ended for _, ended, _, _ in results)
    cpu = [seconds for _, _, _, seconds in results]
    return last - first, startup, sum(records for _, _, records, _ in results), cpu


def process_cold_share(path: str, start: int, end: int) -> tuple[float, int, float]:
    """In a child the item's way started: load bytes ``[start, end)``, process them.

    Returns the wall-clock end, the records written and the process's CPU seconds from its
    start (its start-up included).
    """
    from stepburst.records import load_transform, process_records

    transform = load_transform(FUNCTION)
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    chunks = [data[low : low + CHUNK] for low in range(0, len(data), CHUNK)]
    stats = process_records(chunks, transform, lambda _: None, lambda _: None)
    return time.time(), stats.records, time.process_time()


@dataclass(frozen=True)
class StartupTimes:
    """The parent alone on the whole file against the parent and the processes it starts."""

    alone: float  # wall seconds, and CPU seconds below
    shared: float
    alone_cpu: float
    parent_cpu: float  # the parent's own share
    children_cpu: list[float]  # each child's whole life: start-up, reading and processing

    @property
    def cpu_bound_scaling(self) -> float:
        """The scaling on idle cores: one process's CPU over the longest CPU path."""
        return self.alone_cpu / max(self.parent_cpu, *self.children_cpu)


def time_with_startup(path: Path, count: int, head_start: int) -> StartupTimes:
    """The parent alone on the whole file, then the parent on the first share (``head_start``
    larger) while ``count - 1`` processes start as an item starts them and take the others."""
    sys.path.insert(0, str(HERE.parent / "jobs"))
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # for the children's S3 client
    from stepburst.multicore import child_context, share_ranges, warm_up_child
    from stepburst.records import load_transform, process_records

    transform = load_transform(FUNCTION)
    data = path.read_bytes()

    def read(low: int, high: int) -> bytes:
        return data[low:high]

    def process(low: int, high: int) -> int:
        chunks = [data[at : min(at + CHUNK, high)] for at in range(low, high, CHUNK)]
        return process_records(chunks, transform, lambda _: None, lambda _: None).records

    began, cpu_began = time.time(), time.process_time()
    alone_records = process(0, len(data))
    alone, alone_cpu = time.time() - began, time.process_time() - cpu_began
    shares = share_ranges(len(data), count, head_start, read)
    began = time.time()
    with ProcessPoolExecutor(
        max(1, len(shares) - 1),
        mp_context=child_context(),
        initializer=warm_up_child,
        initargs=(FUNCTION, dict(os.environ), list(sys.path)),
    ) as pool:
        children = [
            pool.submit(process_cold_share, str(path), piece.start, piece.end)
            for piece in shares[1:]
        ]
        cpu_began = time.process_time()
        records = process(shares[0].start, shares[0].end)
        parent_cpu = time.process_time() - cpu_began
        ended = time.time()
        children_cpu = []
        for child in children:
            child_ended, child_records, child_cpu = child.result()
            ended = max(ended, child_ended)
            records += child_records
            children_cpu.append(child_cpu)
    if records != alone_records:
        raise SystemExit(f"records differ: {records} on {count} processes, {alone_records} alone")
    return StartupTimes(alone, ended - began, alone_cpu, parent_cpu, children_cpu)


def free_cpus() -> str:
    """CPUs not taken by the machine's other work: the CPU count less the 1-minute load."""
    try:
        return f"{max(0.0, (os.cpu_count() or 1) - os.getloadavg()[0]):.1f}"
    except OSError:
        return "unknown"


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages: its other work competes for the cores."""
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def time_item_path(path: Path, processes: int, repeat: int) -> tuple[float, float]:
    """Best seconds of the item on one process and on ``processes``; outputs must match."""
    server = start_moto()
    try:
        os.environ.update(
            AWS_ENDPOINT_URL=server.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
        )
        sys.path.insert(0, str(HERE.parent / "jobs"))
        from stepburst.aws import client
        from stepburst.multicore import process_jsonl_range_on_cpus
        from stepburst.storage import S3Object

        s3 = client("s3")
        s3.create_bucket(Bucket=BUCKET)
        with path.open("rb") as body:
            s3.upload_fileobj(body, BUCKET, "input.jsonl")
        head = s3.head_object(Bucket=BUCKET, Key="input.jsonl")
        size, etag = int(head["ContentLength"]), str(head["ETag"])
        best: dict[int, float] = {}
        for _ in range(repeat):
            for count in (1, processes):
                began = time.perf_counter()
                process_jsonl_range_on_cpus(
                    S3Object(BUCKET, "input.jsonl"),
                    0,
                    size,
                    FUNCTION,
                    S3Object(BUCKET, f"output-{count}.jsonl"),
                    S3Object(BUCKET, f"rejects-{count}.jsonl"),
                    if_match=etag,
                    processes=count,
                    min_bytes_per_process=1,
                )
                seconds = time.perf_counter() - began
                best[count] = min(best.get(count, seconds), seconds)
        outputs = {
            s3.get_object(Bucket=BUCKET, Key=f"output-{count}.jsonl")["Body"].read()
            for count in (1, processes)
        }
        if len(outputs) != 1:
            raise SystemExit("the item's output on several processes differs from one's")
        return best[1], best[processes]
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=128, help="input size (default 128)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best is kept")
    parser.add_argument("--data-dir", type=Path, default=DATA, help="where inputs are kept")
    args = parser.parse_args(argv)

    path = data_file(args.size_mb, 0, data_dir=args.data_dir)
    size = path.stat().st_size
    print(f"input: {size / MB:.1f} MB; {os.cpu_count()} CPUs; {args.processes} processes")
    print(f"  load average before: {load_average()}; CPUs free: {free_cpus()}")
    best: dict[int, tuple[float, float, list[float]]] = {}
    records: set[int] = set()
    for _ in range(args.repeat):
        for count in (1, args.processes):
            seconds, startup, written, cpu = time_processing(path, count)
            records.add(written)
            if count not in best or seconds < best[count][0]:
                best[count] = (seconds, startup, cpu)
    if len(records) != 1:
        raise SystemExit(f"record counts differ: {records}")
    for count, (seconds, startup, cpu) in best.items():
        print(
            f"  processing on {count} process(es)   {size / MB / seconds:8.1f} MB/s  "
            f"({seconds:.2f} s; start-up {startup:.2f} s; CPU s per process "
            f"{', '.join(f'{each:.2f}' for each in cpu)}; "
            f"{sum(cpu) / seconds:.2f} CPUs busy on average)"
        )
    scaling = best[1][0] / best[args.processes][0]
    print(f"  processing scaling: {scaling:.2f}x  (goal >= 1.8x on two idle cores)")
    # Whether splitting adds work (the per-process CPU adds up to one process's) or the
    # machine withholds the cores (fewer CPUs busy than processes): the goal needs both.
    split_cost = sum(best[args.processes][2]) / sum(best[1][2])
    print(
        f"  CPU of {args.processes} processes / CPU of one: {split_cost:.2f}x; "
        f"CPU-bound scaling (1 process's CPU s / slowest share's): "
        f"{sum(best[1][2]) / max(best[args.processes][2]):.2f}x"
    )
    print(f"  load average after: {load_average()}; CPUs free: {free_cpus()}")

    from stepburst.multicore import CHILD_HEAD_START_BYTES, FORKED_CHILD_HEAD_START_BYTES

    # The first round starts the children's fork server, as a process's first item does.
    for round_number in range(1 + args.repeat):
        first = round_number == 0
        startup = time_with_startup(
            path,
            args.processes,
            CHILD_HEAD_START_BYTES if first else FORKED_CHILD_HEAD_START_BYTES,
        )
        moment = (
            "first item: the fork server starts and imports, outside the CPU s"
            if first
            else "later item"
        )
        print(
            f"  start-up included ({moment}"
            f"): parent alone {startup.alone:.2f} s; parent + {args.processes - 1} started "
            f"{startup.shared:.2f} s; wall scaling {startup.alone / startup.shared:.2f}x  "
            f"(CPUs free: {free_cpus()})"
        )
        print(
            f"    CPU s: parent alone {startup.alone_cpu:.2f}; parent's share "
            f"{startup.parent_cpu:.2f}; each child from its start "
            f"{', '.join(f'{each:.2f}' for each in startup.children_cpu)}; CPU-bound scaling "
            f"{startup.cpu_bound_scaling:.2f}x"
        )

    one, several = time_item_path(path, args.processes, args.repeat)
    print(f"  item path on 1 process              {size / MB / one:8.1f} MB/s  ({one:.2f} s)")
    print(
        f"  item path on {args.processes} processes            "
        f"{size / MB / several:8.1f} MB/s  ({several:.2f} s)"
    )
    print(f"  item path scaling: {one / several:.2f}x  (moto serves S3 on the same cores)")
    print("  item output on several processes identical to one process's")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
