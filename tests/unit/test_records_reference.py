"""The record processor writes exactly what it wrote before its batch fast path.

``bench/reference_records.py`` is a frozen copy of the processor as it was; every case here runs
both and compares outputs, rejects and counts byte for byte, on the shipped sample, on generated
files with bad lines, and on blocks built so that each check of the fast path fails in turn.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepburst.records import (
    RecordStats,
    RejectRecord,
    Transform,
    adds_fields,
    as_transform,
    load_transform,
    process_records,
)
from stepburst_local.samples import iter_business_lines
from tests.unit.test_records import AWKWARD_LINES

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "yelp_businesses.jsonl"


@pytest.fixture(scope="module")
def reference() -> Iterator[ModuleType]:
    name = "reference_records"
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[name]


@pytest.fixture(autouse=True)
def jobs_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "jobs"))


def written(process: Any, chunks: list[bytes], transform: Transform) -> tuple[bytes, bytes, Any]:
    out: list[bytes] = []
    rejects: list[bytes] = []
    stats: RecordStats = process(chunks, transform, out.append, rejects.append, first_offset=7)
    return b"".join(out), b"".join(rejects), stats.as_dict()


def assert_same(reference: ModuleType, chunks: list[bytes], transform: Transform) -> None:
    got = written(process_records, chunks, transform)
    want = written(reference.process_records, chunks, transform)
    assert got[0] == want[0]
    assert got[1] == want[1]
    assert got[2] == want[2]


class Scores(msgspec.Struct):
    stars: float
    review_count: int


calls: list[int] = []


@adds_fields(reads=Scores, adds=("score", "rank"))
def varied(record: Scores) -> dict[str, Any] | None:
    """A result of every kind, chosen by the record: what each fast-path check must catch."""
    calls.append(record.review_count)
    kind = record.review_count % 9
    if kind == 1:
        return None
    if kind == 2:
        return {}
    if kind == 3:
        raise RejectRecord("three")
    if kind == 4:
        raise KeyError("four")
    if kind == 5:
        return {"undeclared": 1}
    if kind == 6:
        return {"score": {1, 2}}  # cannot be encoded
    return {"score": record.stars * 2, "rank": kind}


def plain_score(record: dict[str, Any]) -> dict[str, Any] | None:
    count = record.get("review_count", 0)
    if count % 7 == 1:
        return None
    if count % 7 == 2:
        raise RejectRecord("plain two")
    record["score"] = count
    return record


def transforms() -> list[Transform]:
    return [
        load_transform("yelp_scores:add_review_score"),
        as_transform(varied, "test:varied"),
        as_transform(plain_score, "test:plain_score"),
    ]


def sample_lines(seed: int, count: int, bad_fraction: float) -> list[bytes]:
    return list(iter_business_lines(count, seed=seed, bad_fraction=bad_fraction))


@pytest.mark.parametrize("index", [0, 1, 2])
def test_the_shipped_sample_is_written_as_before(reference: ModuleType, index: int) -> None:
    data = SAMPLE.read_bytes()
    transform = transforms()[index]
    assert_same(reference, [data], transform)
    assert_same(reference, [data[low : low + 4099] for low in range(0, len(data), 4099)], transform)


@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("crlf", [False, True])
def test_generated_files_with_bad_lines_are_written_as_before(
    reference: ModuleType, index: int, crlf: bool
) -> None:
    rng = random.Random(index)
    lines = sample_lines(index, 3000, 0.03)
    for awkward in AWKWARD_LINES:
        lines.insert(rng.randrange(len(lines) + 1), awkward)
    ending = b"\r\n" if crlf else b"\n"
    data = ending.join(lines) + ending
    chunks = [data[low : low + 65_536] for low in range(0, len(data), 65_536)]
    assert_same(reference, chunks, transforms()[index])


BLOCK_BREAKERS = [
    b"",
    b"   ",
    b'{"stars": 2, "review_count": 9}',
    b'{"stars":2,"review_count":18 }',
    b'{"stars":2,"review_count":27\t}',
    b'{"stars":2,"review_count":36}  ',
    b' {"stars":2,"review_count":45}',
    b'{"stars":2,"review_count":54,"score":1}',
    b'{"stars":2,"review_count":63,"n":"\xc3\xa9"}',
    b'{"stars":2,"review_count":72,"n":"\xc3("}',
    b'{"stars":2,"review_count":81,"a":{}}',
    b'{"stars":2,"review_count":90,"a":\r1}',
    b"{}",
    b"[1]",
]


@settings(max_examples=40, deadline=None)
@given(
    breakers=st.lists(st.sampled_from(BLOCK_BREAKERS), max_size=4),
    counts=st.lists(st.integers(0, 200), min_size=1, max_size=30),
    chunk=st.integers(1, 3000),
    index=st.integers(0, 2),
    final_newline=st.booleans(),
)
def test_every_fast_path_check_falls_back_to_the_same_bytes(
    reference: ModuleType,
    *,
    breakers: list[bytes],
    counts: list[int],
    chunk: int,
    index: int,
    final_newline: bool,
) -> None:
    lines = [b'{"stars":%d.5,"review_count":%d}' % (count % 5, count) for count in counts]
    for position, breaker in enumerate(breakers):
        lines.insert((position * 7) % (len(lines) + 1), breaker)
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    chunks = [data[low : low + chunk] for low in range(0, len(data), chunk)]
    assert_same(reference, chunks, transforms()[index])


def test_a_function_runs_once_per_record_when_its_block_falls_back() -> None:
    calls.clear()
    lines = [b'{"stars":1,"review_count":%d}' % count for count in range(1, 60)]
    process_records(
        [b"\n".join(lines) + b"\n"], as_transform(varied), lambda _: None, lambda _: None
    )
    assert calls == list(range(1, 60))


@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("cut", [0, 1, 17])
def test_a_bad_line_inside_a_block_read_in_place_is_rejected_as_before(
    reference: ModuleType, index: int, cut: int
) -> None:
    """A block is decoded in place from its chunk, after the line the chunk completes."""
    lines = [b'{"stars":%d.5,"review_count":%d}' % (n % 5, n) for n in range(3000)]
    bad = 2000
    lines[bad] = b'{"stars":2,"review_count":'
    lines[bad + 1] = b'{"stars":2,"review_count":54,"score":1,"review_score":2}'
    data = b"\n".join(lines) + b"\n"
    # The second chunk starts ``cut`` bytes into a line, so that line is carried over.
    middle = data.index(b"\n", len(data) // 3) + 1 + cut
    chunks = [data[:middle], data[middle:]]
    assert_same(reference, chunks, transforms()[index])

    _, rejects, _ = written(process_records, chunks, transforms()[index])
    invalid = [
        document
        for document in map(orjson.loads, rejects.splitlines())
        if document["error"] == "invalid_json"
    ]
    assert [(document["item_line"], document["offset"]) for document in invalid] == [
        (bad + 1, 7 + data.index(lines[bad] + b"\n"))
    ]
