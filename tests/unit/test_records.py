"""Record processing against an independent stdlib reference, chunking, rejects and loading."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepburst.records import (
    RecordStats,
    RejectRecord,
    Transform,
    TransformLoadError,
    adds_fields,
    as_transform,
    load_transform,
    process_records,
)
from stepburst_local.samples import iter_business_lines

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = "yelp_scores:add_review_score"


@pytest.fixture(autouse=True)
def jobs_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "jobs"))


# -- an independent reference: stdlib json, line by line -------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def reference_review_scores(data: bytes) -> tuple[list[dict[str, Any]], list[tuple[int, int, str]]]:
    """Expected output records and rejects ``(line number, offset, error)`` for the example."""
    outputs: list[dict[str, Any]] = []
    rejects: list[tuple[int, int, str]] = []
    offset = 0
    last = data.count(b"\n") + 1
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line_offset = offset
        offset += len(raw) + 1
        if number == last and not raw:
            break  # what follows the final newline is not a line
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            rejects.append((number, line_offset, "invalid_json"))
            continue
        if not text.strip(" \t\r"):
            continue
        try:
            record = json.loads(text, parse_constant=_refuse_constant)
        except ValueError:
            rejects.append((number, line_offset, "invalid_json"))
            continue
        if not isinstance(record, dict):
            rejects.append((number, line_offset, "not_an_object"))
            continue
        stars = record.get("stars")
        count = record.get("review_count")
        if (
            not _is_number(stars)
            or not 0 <= stars <= 5
            or not isinstance(count, int)
            or isinstance(count, bool)
            or count < 0
        ):
            rejects.append((number, line_offset, "invalid_record"))
            continue
        record["review_score"] = float(stars) * count
        outputs.append(record)
    return outputs, rejects


# -- generated input with every kind of line -------------------------------------------------

AWKWARD_LINES = [
    b"",
    b"   \t ",
    b"\r",
    b'{"business_id": "cut", "name": "Half',
    b"[1, 2, 3]",
    b'"just a string"',
    b"42",
    b"null",
    b'{"business_id": "no-stars", "review_count": 3}',
    b'{"business_id": "no-count", "stars": 3.5}',
    b'{"stars": "4", "review_count": 10}',
    b'{"stars": 4, "review_count": 2.5}',
    b'{"stars": true, "review_count": 1}',
    b'{"stars": 9, "review_count": 1}',
    b'{"stars": 1, "review_count": -1}',
    b'{"stars": NaN, "review_count": 1}',
    b'{"stars": 1, "review_count": 2} trailing',
    b'{"stars": 1, "review_count": 2,}',
    b'{"stars": 1, "review_count": 2, "note": "bad \xff\xfe bytes"}',
    b'{"stars": 1, "review_count": 2, "bad": [1, 2,, 3]}',
    b'{"stars": 2, "review_count": 3}\r',
    b'  {"stars": 2, "review_count": 3}  ',
    b'{ "stars" : 2 , "review_count" : 3 }',
    b'{"stars": 4.5, "review_count": 2, "review_score": "old"}',
    b'{"stars": 4.5, "review_count": 2, "name": "review_score", "x": {"review_score": 1}}',
    b'{"stars": 3, "review_count": 7, "id": 123456789012345678901234567890}',
    '{"stars": 5, "review_count": 1, "name": "Café 東京 🎉", "esc": "\\u00e9\\n"}'.encode(),
    b'{"stars": 0, "review_count": 0, "nested": {"a": [{}, [], {"b": null}]}}',
    b'{"stars":1,"review_count":1,"stars":2}',
    b'{"review_count": 4, "stars": 2.5}',
]


def generated_file(seed: int, count: int = 400, *, crlf: bool = False) -> bytes:
    rng = random.Random(seed)
    lines = list(iter_business_lines(count, seed=seed))
    for awkward in AWKWARD_LINES:
        lines.insert(rng.randrange(len(lines) + 1), awkward)
    ending = b"\r\n" if crlf else b"\n"
    data = ending.join(lines)
    return data + ending if rng.random() < 0.5 else data


def run(
    data: bytes | list[bytes], transform: Transform, first_offset: int = 0
) -> tuple[bytes, bytes, RecordStats]:
    chunks = [data] if isinstance(data, bytes) else data
    out: list[bytes] = []
    rejects: list[bytes] = []
    stats = process_records(
        chunks, transform, out.append, rejects.append, first_offset=first_offset
    )
    return b"".join(out), b"".join(rejects), stats


def parse_lines(data: bytes) -> list[Any]:
    assert data == b"" or data.endswith(b"\n")
    return [json.loads(line) for line in data.splitlines()]


# -- the example job against the reference ---------------------------------------------------


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("seed", [1, 2])
def test_example_matches_the_stdlib_reference(seed: int, crlf: bool) -> None:
    data = generated_file(seed, crlf=crlf)
    output, rejects, stats = run(data, load_transform(EXAMPLE))
    expected, expected_rejects = reference_review_scores(data)

    assert parse_lines(output) == expected
    got_rejects = parse_lines(rejects)
    assert [(r["item_line"], r["offset"], r["error"]) for r in got_rejects] == expected_rejects
    for reject in got_rejects:
        raw = data[reject["offset"] :].split(b"\n", 1)[0].removesuffix(b"\r")
        assert reject["text"] == raw.decode("utf-8", errors="replace")
        assert reject["reason"]

    assert stats.lines == data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    assert stats.records == len(expected)
    assert stats.rejects == len(expected_rejects)
    assert stats.lines == stats.records + stats.rejects + stats.blank_lines + stats.filtered
    assert stats.bytes_in == len(data)
    assert stats.bytes_out == len(output)
    assert sum(stats.reject_errors.values()) == stats.rejects


def test_output_keeps_the_original_bytes_and_appends_the_field() -> None:
    line = '{"name":"Café","stars":4.5,"review_count":10,"big":123456789012345678901234567890}'
    output, _, _ = run(line.encode() + b"\n", load_transform(EXAMPLE))
    assert output == line[:-1].encode() + b',"review_score":45.0}\n'


def test_awkward_but_valid_lines_are_patched_correctly() -> None:
    transform = load_transform(EXAMPLE)
    cases = {
        b'{"stars": 2, "review_count": 3}\r': {"stars": 2, "review_count": 3},
        b'  {"stars": 2, "review_count": 3}  ': {"stars": 2, "review_count": 3},
        b'{ "stars" : 2 , "review_count" : 3 }': {"stars": 2, "review_count": 3},
        b'{"stars":2,"review_count":3,"review_score":"old"}': {"stars": 2, "review_count": 3},
        b'{"stars":2,"review_count":3,"n":"review_score"}': {
            "stars": 2,
            "review_count": 3,
            "n": "review_score",
        },
    }
    for line, record in cases.items():
        output, rejects, _ = run(line, transform)
        assert rejects == b""
        assert json.loads(output) == {**record, "review_score": 6.0}, line
        assert output.count(b"\n") == 1


@pytest.mark.parametrize(
    "line",
    [
        b'{"stars":2,"review_count":3,"review_score":"old"}',
        b'{"review_score":1,"stars":2,"review_count":3}',
        b'{"stars":2,"review_count":3,"review\\u005fscore":"old"}',
    ],
)
def test_an_existing_field_is_replaced_not_duplicated(line: bytes) -> None:
    output, _, _ = run(line, load_transform(EXAMPLE))
    assert output.count(b"score") == 1
    assert json.loads(output) == {"stars": 2, "review_count": 3, "review_score": 6.0}


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=30_000), max_size=40), seed=st.integers(0, 3)
)
def test_chunk_boundaries_do_not_change_results(cuts: list[int], seed: int) -> None:
    data = generated_file(seed, count=30, crlf=seed == 3)
    transform = load_transform(EXAMPLE)
    whole = run(data, transform, first_offset=1000)
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert run(chunks, transform, first_offset=1000) == whole


def test_every_single_byte_chunking_matches() -> None:
    data = generated_file(5, count=3)
    transform = load_transform(EXAMPLE)
    whole = run(data, transform)
    assert run([data[i : i + 1] for i in range(len(data))], transform) == whole


def test_first_offset_moves_reject_offsets() -> None:
    data = b'{"stars":1,"review_count":1}\n\nnot json\n'
    _, rejects, stats = run(data, load_transform(EXAMPLE), first_offset=5000)
    [reject] = parse_lines(rejects)
    assert (reject["item_line"], reject["offset"], reject["error"]) == (3, 5030, "invalid_json")
    assert (stats.lines, stats.records, stats.blank_lines, stats.rejects) == (3, 1, 1, 1)


def test_reject_text_is_truncated() -> None:
    data = b'{"x": "' + b"y" * 5000
    _, rejects, _ = run(data, load_transform(EXAMPLE))
    [reject] = parse_lines(rejects)
    assert len(reject["text"]) == 2048


def identity(record: dict[str, Any]) -> dict[str, Any]:
    return record


@settings(max_examples=80, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
    trailing_newline=st.booleans(),
)
def test_overlong_lines_are_rejected_without_buffering(
    lengths: list[int], cuts: list[int], trailing_newline: bool
) -> None:
    lines = [b'{"k":"' + b"x" * n + b'"}' for n in lengths]
    data = b"\n".join(lines) + (b"\n" if trailing_newline else b"")
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    out: list[bytes] = []
    rejects: list[bytes] = []
    stats = process_records(
        chunks, as_transform(identity), out.append, rejects.append, max_line_bytes=60
    )
    expected_out = [line for line in lines if len(line) <= 60]
    assert b"".join(out) == b"".join(line + b"\n" for line in expected_out)
    offsets = [sum(len(line) + 1 for line in lines[:i]) for i in range(len(lines))]
    assert [
        (r["item_line"], r["offset"], r["error"], r["text"]) for r in parse_lines(b"".join(rejects))
    ] == [
        (i + 1, offsets[i], "line_too_long", line[:2048].decode())
        for i, line in enumerate(lines)
        if len(line) > 60
    ]
    assert stats.lines == len(lines)
    assert stats.bytes_in == len(data)


def test_empty_input() -> None:
    assert run([], load_transform(EXAMPLE)) == (b"", b"", RecordStats())
    assert run([b"", b""], load_transform(EXAMPLE))[2].lines == 0


# -- the fast form ---------------------------------------------------------------------------


class Pair(msgspec.Struct):
    a: int
    b: int = 0


class MaybeA(msgspec.Struct):
    a: int | None = None


@adds_fields(reads=Pair, adds=("total",))
def add_total(pair: Pair) -> dict[str, Any] | None:
    if pair.a < 0:
        raise RejectRecord("a is negative")
    if pair.a == 0:
        return None
    if pair.a == 13:
        raise ZeroDivisionError("unlucky")
    if pair.a == 14:
        return {}
    if pair.a == 15:
        return {"total": object()}
    if pair.a == 16:
        return ["not", "a", "dict"]  # type: ignore[return-value]
    if pair.a == 17:
        return {"total": pair.a + pair.b, "extra": "undeclared"}
    if pair.a == 18:
        return {"total": pair.a, 5: "not a string key"}  # type: ignore[dict-item]
    return {"total": pair.a + pair.b}


def test_field_adder_outcomes() -> None:
    lines = [
        b'{"a": 1, "b": 2}',
        b'{"a": -1}',
        b'{"a": 0}',
        b'{"a": 13}',
        b'{"a": 14, "z": 1}',
        b'{"a": 15}',
        b'{"a": 16}',
        b'{"a": 17, "extra": 0}',
        b'{"a": 18}',
        b'{"a": 2, "total": 0}',
        b'{"a": "x"}',
    ]
    output, rejects, stats = run(b"\n".join(lines), as_transform(add_total))
    assert parse_lines(output) == [
        {"a": 1, "b": 2, "total": 3},
        {"a": 14, "z": 1},
        {"a": 17, "extra": "undeclared", "total": 17},
        {"a": 2, "total": 2},
    ]
    found = [(r["item_line"], r["error"], r["reason"]) for r in parse_lines(rejects)]
    assert [(line, error) for line, error, _ in found] == [
        (2, "rejected"),
        (4, "transform_error"),
        (6, "transform_error"),
        (7, "transform_error"),
        (9, "transform_error"),
        (11, "invalid_record"),
    ]
    assert found[0][2] == "a is negative"
    assert found[1][2] == "ZeroDivisionError: unlucky"
    assert "returned list" in found[3][2]
    assert stats.filtered == 1
    assert stats.lines == 11
    assert stats.records == 4


def test_field_adder_on_empty_objects() -> None:
    @adds_fields(reads=MaybeA, adds=("n",))
    def add_n(record: MaybeA) -> dict[str, Any]:
        return {"n": 1}

    output, rejects, _ = run(b'{}\n{ }\n{\t}\r\n{"a":null}\n', as_transform(add_n))
    assert rejects == b""
    assert parse_lines(output) == [{"n": 1}, {"n": 1}, {"n": 1}, {"a": None, "n": 1}]


def test_field_adder_without_declared_adds_checks_bytes() -> None:
    @adds_fields(reads=Pair)
    def add_sum(pair: Pair) -> dict[str, Any]:
        return {"sum": pair.a + pair.b}

    output, _, _ = run(b'{"a":1,"b":2}\n{"a":1,"sum":"old"}\n', as_transform(add_sum))
    assert parse_lines(output) == [{"a": 1, "b": 2, "sum": 3}, {"a": 1, "sum": 1}]


def test_field_adder_stays_callable_and_named() -> None:
    assert add_total(Pair(a=2, b=3)) == {"total": 5}
    assert add_total.__name__ == "add_total"


def test_field_adder_requires_a_struct() -> None:
    with pytest.raises(TypeError, match=r"msgspec\.Struct"):
        adds_fields(reads=dict)  # type: ignore[type-var]


def test_example_function_rejects_with_clear_reasons() -> None:
    data = (
        b'{"review_count": 3}\n{"stars": "4", "review_count": 1}\n'
        b'{"stars": 4, "review_count": -2}\n'
    )
    _, rejects, _ = run(data, load_transform(EXAMPLE))
    reasons = [r["reason"] for r in parse_lines(rejects)]
    assert "stars" in reasons[0]
    assert "missing" in reasons[0]
    assert "$.stars" in reasons[1]
    assert "$.review_count" in reasons[2]


# -- the plain form --------------------------------------------------------------------------


def plain_score(record: dict[str, Any]) -> dict[str, Any] | None:
    if record.get("skip"):
        return None
    if "stars" not in record:
        raise RejectRecord("no stars")
    if record["stars"] == 0:
        return "zero"  # type: ignore[return-value]
    if record["stars"] == -1:
        return {"bad": math}
    record["score"] = record["stars"] * 2
    return record


def test_plain_function_outcomes() -> None:
    data = (
        b'{"stars": 2}\n[1]\n{"skip": true}\n{"x": 1}\nbroken\n\n{"stars": 0}\n{"stars": -1}\n'
        b'{"stars": 1, "big": 123456789012345678901234567890}'
    )
    output, rejects, stats = run(data, as_transform(plain_score))
    assert parse_lines(output) == [
        {"stars": 2, "score": 4},
        {"stars": 1, "big": 123456789012345678901234567890, "score": 2},
    ]
    found = [(r["item_line"], r["error"]) for r in parse_lines(rejects)]
    assert found == [
        (2, "not_an_object"),
        (4, "rejected"),
        (5, "invalid_json"),
        (7, "transform_error"),
        (8, "transform_error"),
    ]
    assert (stats.lines, stats.records, stats.filtered, stats.blank_lines) == (9, 2, 1, 1)


def test_plain_function_rejects_invalid_utf8() -> None:
    output, rejects, _ = run(b'{"stars": 1, "s": "\xff"}\n', as_transform(plain_score))
    assert output == b""
    assert parse_lines(rejects)[0]["error"] == "invalid_json"


# -- loading ---------------------------------------------------------------------------------


def test_load_transform_finds_the_example() -> None:
    transform = load_transform(EXAMPLE)
    assert transform.reference == EXAMPLE
    assert transform.adder is not None
    assert transform.name == "add_review_score"


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("no_colon", "expected 'module:function'"),
        ("stepburst_missing_module:f", "no module named 'stepburst_missing_module'"),
        ("yelp_scores:nope", "has no function 'nope'"),
        ("yelp_scores:__doc__", "is not callable"),
        ("broken_job:f", "failed to import"),
    ],
)
def test_load_transform_errors_name_the_reference(
    reference: str, problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_job.py").write_text("import stepburst_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TransformLoadError) as caught:
        load_transform(reference)
    assert str(caught.value).startswith(f"{reference}: ")
    assert problem in str(caught.value)


def test_stats_add() -> None:
    one = RecordStats(lines=3, records=2, rejects=1, reject_errors={"invalid_json": 1})
    two = RecordStats(lines=1, blank_lines=1, bytes_in=10, reject_errors={"invalid_json": 2})
    one.add(two)
    assert one.lines == 4
    assert one.reject_errors == {"invalid_json": 3}
