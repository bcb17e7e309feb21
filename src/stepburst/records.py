"""Record processing for JSONL items: run a user function over each line of a byte range.

A job's ``run.function`` names a *transform* as ``module:function``. Two forms are supported:

* **Plain**: ``def f(record: dict[str, Any]) -> dict[str, Any] | None``. Each line is decoded
  in full, the function returns the output record (or ``None`` to drop it) and the result is
  encoded again.
* **Field adder** (fast): a function decorated with :func:`adds_fields`. It receives a
  :class:`msgspec.Struct` holding only the fields it reads, and returns a dict of fields to add.
  The processor appends those fields to the line's original bytes, just before its closing
  ``}``, so the rest of the record is never decoded into Python objects nor re-encoded. The
  whole line is still validated as JSON (msgspec parses skipped values; UTF-8 in non-ASCII lines
  is checked separately because msgspec does not validate skipped strings).

A record that already has a field the function adds is decoded, merged and re-encoded in
full, so the output never holds a duplicate key. Fields declared in ``adds=`` are recognised
by the decoder itself; undeclared ones by searching the line for the encoded key, which misses
a key spelled with ``\\u`` escapes (parsers then keep the added value, the last one).

A line becomes a *reject* - never an exception - with one of these ``error`` classes:
``invalid_json`` (not JSON, or not UTF-8), ``not_an_object``, ``invalid_record`` (a field the
function reads is missing or of the wrong type), ``rejected`` (the function raised
:class:`RejectRecord`), ``transform_error`` (it raised anything else, or returned something
that cannot be written) and ``line_too_long``. Each reject is one JSON line with ``item_line``
(1-based within the range), ``offset`` (of the line's first byte in the source object),
``error``, ``reason`` and ``text`` (the line's first 2 KiB). Blank lines are counted and
skipped; ``lines`` counts every line, so a range's line numbers can be made global.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import itertools
import keyword
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, Generic, TypeVar

import msgspec
import orjson

from stepburst.errors import StepburstError

# Error classes written in the ``error`` field of a reject.
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
INVALID_RECORD = "invalid_record"
REJECTED = "rejected"
TRANSFORM_ERROR = "transform_error"
LINE_TOO_LONG = "line_too_long"

REJECT_TEXT_LIMIT = 2048
REJECT_REASON_LIMIT = 1024
# Longer lines are rejected rather than held in memory (e.g. a single-line JSON array upload).
MAX_LINE_BYTES = 64 * 1024 * 1024

_JSON_WHITESPACE = b" \t\r"
_OPEN_BRACE = ord("{")
_CLOSE_BRACE = ord("}")
_COMMA = ord(",")
_NEWLINE = ord("\n")
# A line ending in ``}`` can take ``,"field":value`` before that brace unless the byte before
# it is ``{`` (an empty object) or whitespace (which might follow a ``{``): those take the
# careful path.
_UNSAFE_BEFORE_CLOSE = frozenset(b"{ \t\r")
_ONLY_CLOSE_BRACE = {_CLOSE_BRACE}
_LAST_BYTE = itemgetter(-1)
_BYTE_BEFORE_LAST = itemgetter(-2)
_WITHOUT_LAST_BYTE = itemgetter(slice(None, -1))
_UNSET = msgspec.UNSET

StructT = TypeVar("StructT", bound=msgspec.Struct)


class RejectRecord(Exception):  # noqa: N818 - the user-facing name reads as an action
    """Raise from a transform to reject the current record; ``str(exc)`` is the reason."""


class TransformLoadError(StepburstError):
    """A ``module:function`` reference cannot be imported or is not a usable function."""

    def __init__(self, reference: str, problem: str) -> None:
        self.reference = reference
        self.problem = problem
        super().__init__(f"{reference}: {problem}")


@dataclass(slots=True)
class RecordStats:
    """What one pass over a range did. ``lines`` counts every line, blank and rejected too."""

    lines: int = 0
    records: int = 0
    rejects: int = 0
    blank_lines: int = 0
    filtered: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    reject_errors: dict[str, int] = field(default_factory=dict)

    def add(self, other: RecordStats) -> None:
        """Accumulate ``other`` into this one (e.g. to total a run's items)."""
        self.lines += other.lines
        self.records += other.records
        self.rejects += other.rejects
        self.blank_lines += other.blank_lines
        self.filtered += other.filtered
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        for error, count in other.reject_errors.items():
            self.reject_errors[error] = self.reject_errors.get(error, 0) + count

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FieldAdder(Generic[StructT]):
    """A transform that reads a few fields and adds new ones; made by :func:`adds_fields`.

    Calling it calls the wrapped function, so it stays unit-testable with a plain Struct.
    """

    def __init__(
        self,
        function: Callable[[StructT], Mapping[str, Any] | None],
        reads: type[StructT],
        adds: frozenset[str],
    ) -> None:
        self.function = function
        self.reads = reads
        self.adds = adds
        functools.update_wrapper(self, function)
        probe_type, probed = _probe_struct(reads, adds)
        # Fields whose presence in a record the decoder reports (see _probe_struct).
        self.probed: frozenset[str] = probed
        self.decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(probe_type)
        names = sorted(probed)
        self.probe: Callable[[Any], object] = attrgetter(*names) if names else _no_probe
        self.probe_absent: object = _UNSET if len(names) <= 1 else (_UNSET,) * len(names)

    def __call__(self, record: StructT) -> Mapping[str, Any] | None:
        return self.function(record)


def _no_probe(record: Any) -> object:
    return _UNSET


def _probe_struct(
    reads: type[msgspec.Struct], adds: frozenset[str]
) -> tuple[type[msgspec.Struct], frozenset[str]]:
    """A subclass of ``reads`` that also decodes each added field as an optional raw value.

    The decoder then says, at no extra cost, whether a record already has a field the function
    adds: those lines must be merged in full instead of patched. Only names usable as Python
    identifiers that the struct's own config leaves unchanged can be probed; the others are
    checked by searching the line's bytes.

    The subclass is not tracked by the garbage collector: decoded JSON holds no reference
    cycles, and a block decodes thousands of records at once, which would otherwise make each
    collection walk them all.
    """
    existing = set(reads.__struct_fields__) | set(reads.__struct_encode_fields__)
    names = sorted(
        name
        for name in adds
        if name.isidentifier()
        and not keyword.iskeyword(name)
        and not name.startswith("_")
        and name not in existing
    )
    try:
        untracked = msgspec.defstruct(f"{reads.__name__}Decoded", [], bases=(reads,), gc=False)
    except (TypeError, ValueError):
        untracked = reads
    if not names:
        return untracked, frozenset()
    try:
        probe = msgspec.defstruct(
            f"{reads.__name__}WithProbe",
            [(name, msgspec.Raw | msgspec.UnsetType, _UNSET) for name in names],
            bases=(reads,),
            gc=False,
        )
    except (TypeError, ValueError):
        return untracked, frozenset()
    encoded = dict(zip(probe.__struct_fields__, probe.__struct_encode_fields__, strict=True))
    if any(encoded[name] != name for name in names):
        return untracked, frozenset()
    return probe, frozenset(names)


def adds_fields(
    *, reads: type[StructT], adds: Iterable[str] = ()
) -> Callable[[Callable[[StructT], Mapping[str, Any] | None]], FieldAdder[StructT]]:
    """Declare a fast transform: it reads the fields of ``reads`` and returns fields to add.

    ``reads`` is a :class:`msgspec.Struct` naming (and typing) the fields the function needs;
    a record that lacks one or has the wrong type is rejected with msgspec's message. ``adds``
    names the fields the function returns: declaring them lets the decoder spot records that
    already carry one (those are merged in full) without scanning each line's bytes. The
    function returns a dict of the fields to add, ``{}`` to keep the line unchanged, or
    ``None`` to drop the record. It may raise :class:`RejectRecord`.
    """
    if not (isinstance(reads, type) and issubclass(reads, msgspec.Struct)):
        raise TypeError("adds_fields(reads=...) takes a msgspec.Struct subclass")
    declared = frozenset(adds)
    if not all(isinstance(name, str) for name in declared):
        raise TypeError("adds_fields(adds=...) takes field names as strings")

    def decorate(function: Callable[[StructT], Mapping[str, Any] | None]) -> FieldAdder[StructT]:
        return FieldAdder(function, reads, declared)

    return decorate


@dataclass(frozen=True, slots=True)
class Transform:
    """A loaded user function: plain (``adder`` is None) or a :class:`FieldAdder`."""

    reference: str
    function: Callable[..., Any]
    adder: FieldAdder[Any] | None = None

    @property
    def name(self) -> str:
        return getattr(self.function, "__name__", self.reference)


def as_transform(function: Callable[..., Any], reference: str | None = None) -> Transform:
    """Wrap a function (plain or decorated with :func:`adds_fields`) as a :class:`Transform`."""
    name = reference or f"{function.__module__}:{getattr(function, '__qualname__', function)}"
    if isinstance(function, FieldAdder):
        return Transform(name, function.function, function)
    if not callable(function):
        raise TransformLoadError(name, "is not callable")
    return Transform(name, function)


def load_transform(reference: str) -> Transform:
    """Import ``module:function`` and wrap it. Errors name the reference and what is wrong."""
    return as_transform(import_function(reference), reference)


def import_function(reference: str) -> Callable[..., Any]:
    """The callable a job names as ``module:function``; errors name it and what is wrong."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise TransformLoadError(reference, "expected 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(f"{missing}."):
            raise TransformLoadError(
                reference, f"no module named {module_name!r} on the path"
            ) from exc
        raise TransformLoadError(
            reference, f"module {module_name!r} failed to import: {exc}"
        ) from exc
    except Exception as exc:
        raise TransformLoadError(
            reference, f"module {module_name!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        function = getattr(module, attribute)
    except AttributeError as exc:
        raise TransformLoadError(
            reference, f"module {module_name!r} has no function {attribute!r}"
        ) from exc
    if not callable(function):
        raise TransformLoadError(reference, f"{attribute!r} is not callable")
    return function  # type: ignore[no-any-return]


def import_job_function(reference: str, jobs_dir: Path) -> Callable[..., Any]:
    """The callable a job of ``jobs_dir`` names as ``module:function``.

    Where the job code is packaged with the function, its directory is on ``sys.path`` (the
    jobs layer in /opt/python on Lambda, /app/jobs in the worker image): the module is imported
    by name, as :func:`import_function` does. Elsewhere (the CLI's preview, a benchmark) the
    module's file in ``jobs_dir`` is loaded, registered in ``sys.modules`` under a name of that
    directory's own, so msgspec and pydantic resolve its type hints and two jobs directories
    with a module of the same name never answer for each other. A module that is not a file of
    ``jobs_dir`` (an installed package's) is imported by name.
    """
    module_name, sep, attribute = reference.partition(":")
    top, _, rest = module_name.partition(".")
    directory = jobs_dir.resolve()
    source = _job_module_file(directory, top) if sep and top and attribute else None
    if source is None or str(directory) in {str(Path(entry).resolve()) for entry in sys.path}:
        return import_function(reference)
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:12]
    private = f"{JOB_MODULES_PREFIX}{digest}_{top}"
    if private not in sys.modules:
        _load_job_module(private, source, reference)
    try:
        return import_function(f"{private}{'.' if rest else ''}{rest}:{attribute}")
    except TransformLoadError as exc:
        raise TransformLoadError(reference, exc.problem.replace(private, top)) from exc


JOB_MODULES_PREFIX = "stepburst_jobs_"
"""What the name of a job module loaded by file starts with (then its directory's digest)."""


def _job_module_file(directory: Path, top: str) -> Path | None:
    """The file of module ``top`` in a jobs directory: ``top.py`` or ``top/__init__.py``."""
    for candidate in (directory / f"{top}.py", directory / top / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _load_job_module(name: str, source: Path, reference: str) -> None:
    package = [str(source.parent)] if source.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(name, source, submodule_search_locations=package)
    if spec is None or spec.loader is None:
        raise TransformLoadError(reference, f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import does: its dataclasses and type hints look it up.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's module: its failure names the reference
        sys.modules.pop(name, None)
        raise TransformLoadError(
            reference, f"module {source.stem!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    except BaseException:
        sys.modules.pop(name, None)
        raise


def process_records(
    chunks: Iterable[bytes],
    transform: Transform,
    write_output: Callable[[bytes], None],
    write_reject: Callable[[bytes], None],
    *,
    first_offset: int = 0,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> RecordStats:
    """Run ``transform`` over the JSON lines in ``chunks`` (arbitrary slices of one range).

    Output records go to ``write_output`` as whole lines, one call per batch of lines; each
    reject goes to ``write_reject`` as one JSON line. ``first_offset`` is the byte offset of
    the first chunk's first byte in the source object, used for the rejects' ``offset``.
    LF and CRLF endings are accepted; output lines end in LF. A line longer than
    ``max_line_bytes`` is rejected (``line_too_long``) without being held in memory.
    """
    processor = _Processor(transform, write_output, write_reject, first_offset, max_line_bytes)
    pending: list[bytes] = []
    pending_size = 0
    oversized = False  # the pending line is past max_line_bytes: keep its start only
    for chunk in chunks:
        if not chunk:
            continue
        processor.stats.bytes_in += len(chunk)
        last = chunk.rfind(b"\n")
        if last < 0:
            pending_size += len(chunk)
            if not oversized:
                pending.append(chunk)
                if pending_size > max_line_bytes:
                    oversized = True
                    pending = [b"".join(pending)[:REJECT_TEXT_LIMIT]]
            elif len(pending[0]) < REJECT_TEXT_LIMIT:
                pending = [(pending[0] + chunk[:REJECT_TEXT_LIMIT])[:REJECT_TEXT_LIMIT]]
            continue
        # The line this chunk completes goes on its own, then the chunk's other whole lines
        # as one block, read in place: joining them to the carried-over bytes would copy the
        # whole chunk.
        first = chunk.find(b"\n")
        if oversized or pending_size + first > max_line_bytes:
            head = b"".join([*pending, chunk[: min(first, REJECT_TEXT_LIMIT)]])
            processor.oversized_line(head[:REJECT_TEXT_LIMIT], pending_size + first, ended=True)
            low = first + 1
        elif pending:
            pending.append(chunk[:first])
            processor.batch([b"".join(pending)], ended=True)
            low = first + 1
        else:
            low = 0
        pending.clear()
        pending_size = 0
        oversized = False
        if low <= last:
            processor.block(chunk, low, last + 1)
        if last + 1 < len(chunk):
            tail = chunk[last + 1 :]
            pending.append(tail)
            pending_size = len(tail)
            if pending_size > max_line_bytes:
                oversized = True
                pending = [tail[:REJECT_TEXT_LIMIT]]
    if oversized:
        processor.oversized_line(b"".join(pending), pending_size, ended=False)
    elif pending:
        processor.batch([b"".join(pending)], ended=True)
    return processor.stats


def _lines_between(chunk: bytes, low: int) -> list[bytes]:
    """The lines of ``chunk`` from ``low`` (0, or just after its first LF) to its last LF."""
    lines = chunk.split(b"\n")
    lines.pop()  # what follows the last LF
    if low:
        del lines[0]  # what precedes the first LF
    return lines


def _call_each(function: Callable[[Any], Any], records: list[Any]) -> list[Any]:
    """``function`` of each record, in order; what one raises is kept in its place."""
    results: list[Any] = []
    while True:
        try:
            # extend() keeps what it appended before an exception, and runs map() in C.
            results.extend(map(function, itertools.islice(records, len(results), None)))
        except Exception as exc:
            results.append(_Raised(exc))
        else:
            return results


class _Raised:
    """What a function raised for one record of a block, raised again when its line is handled."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


# Per line of a block: the decoded records and what the function returned for each.
_Decoded = tuple[list[Any], list[Any]]
# Whether a block's fast path wrote it, and if not what it decoded that the slow one can reuse.
_Attempt = tuple[bool, _Decoded | None]


class _Processor:
    """State of one :func:`process_records` call; ``batch`` handles a list of whole lines."""

    def __init__(
        self,
        transform: Transform,
        write_output: Callable[[bytes], None],
        write_reject: Callable[[bytes], None],
        first_offset: int,
        max_line_bytes: int,
    ) -> None:
        self.transform = transform
        self.max_line_bytes = max_line_bytes
        self.write_output = write_output
        self.write_reject = write_reject
        self.stats = RecordStats()
        self.any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
        self.encoder = msgspec.json.Encoder()
        self.needles: dict[str, bytes] = {}
        # Position of the current batch: lines before it and the byte offset of its start.
        self.line_base = 0
        self.offset_base = first_offset
        self.offsets: list[int] | None = None
        self.lines: list[bytes] = []
        self.out = bytearray()

    def block(self, chunk: bytes, low: int, high: int) -> None:
        """Process the whole lines ``chunk[low:high]``: in one go when they allow, else one by one.

        ``low`` is 0 or just after the chunk's first LF, ``high`` just after its last LF. The
        lines are split out of the chunk and decoded from a view of it, so the block is never
        copied. The fast path decodes every line with one ``decode_lines`` call and writes the
        block's output with one join. Whatever it does not cover (a bad line, a CR, a blank
        line, a result that is not a plain dict...) sends the block line by line, reusing what
        was already decoded and computed so the function never runs twice on a record.
        """
        lines = _lines_between(chunk, low) if high - low > self.max_line_bytes else None
        decoded: _Decoded | None = None
        if lines is None or max(map(len, lines)) <= self.max_line_bytes:
            adder = self.transform.adder
            # Not released explicitly: a decoded msgspec.Raw value may still refer to it.
            view = memoryview(chunk)[low:high]
            if adder is not None:
                if lines is None:
                    lines = _lines_between(chunk, low)
                done, decoded = self._fast_adder_block(view, lines, chunk.isascii(), adder)
            else:  # the plain form needs the lines themselves only if it falls back
                done, decoded = self._fast_plain_block(view, chunk.count(b"\n", low, high))
            if done:
                return
        if lines is None:
            lines = _lines_between(chunk, low)
        self.batch(lines, ended=True, decoded=decoded)

    def _finish_block(self, size: int, lines: int, output: bytes) -> None:
        stats = self.stats
        stats.lines += lines
        stats.records += lines
        if output:
            stats.bytes_out += len(output)
            self.write_output(output)
        self.line_base += lines
        self.offset_base += size

    def _fast_adder_block(
        self, block: memoryview, lines: list[bytes], ascii: bool, adder: FieldAdder[Any]
    ) -> _Attempt:
        """Patch every line of ``block`` (split as ``lines``) at once, when every line allows it.

        Every line must be a valid record in UTF-8 ending in ``}``, with neither ``{`` nor
        whitespace before that brace, and its function's result a non-empty dict of declared
        fields absent from the record: the same lines the line-by-line loop patches.
        """
        try:
            records = adder.decoder.decode_lines(block)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return False, None
        count = len(lines)
        if len(records) != count:  # blank lines, which decode_lines skips
            return False, None
        function = adder.function
        results = _call_each(function, records)
        decoded: _Decoded = (records, results)
        if (
            set(map(_LAST_BYTE, lines)) != _ONLY_CLOSE_BRACE
            or not _UNSAFE_BEFORE_CLOSE.isdisjoint(map(_BYTE_BEFORE_LAST, lines))
            or set(map(type, results)) != {dict}
            or not all(results)
            or not adder.probed.issuperset(set().union(*results))
            or list(map(adder.probe, records)).count(adder.probe_absent) != count
        ):
            return False, decoded
        if not ascii:  # msgspec does not check UTF-8 in the values it skips
            try:
                deque(map(bytes.decode, itertools.filterfalse(bytes.isascii, lines)), 0)
            except UnicodeDecodeError:
                return False, decoded
        try:
            encoded = self.encoder.encode_lines(results)
        except Exception:
            return False, decoded
        # '{"f":1}\\n{"f":2}\\n' becomes ',"f":1}\\n' ',"f":2}\\n' to follow each line cut
        # before its closing brace: no raw LF is inside an encoded value, so each "\\n{"
        # starts the next result.
        additions = (b"," + encoded[1:]).replace(b"\n{", b"\n,").splitlines(keepends=True)
        # Lines and additions alternate; slice assignment fills them in without a Python loop.
        pieces: list[bytes] = [b""] * (2 * count)
        pieces[::2] = map(_WITHOUT_LAST_BYTE, lines)
        pieces[1::2] = additions
        self._finish_block(len(block), count, b"".join(pieces))
        return True, None

    def _fast_plain_block(self, block: memoryview, count: int) -> _Attempt:
        """Decode and encode the ``count`` lines of ``block`` at once; as
        :meth:`_fast_adder_block`."""
        try:
            records = self.any_decoder.decode_lines(block)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return False, None
        if len(records) != count or set(map(type, records)) != {dict}:
            return False, None
        function = self.transform.function
        results = _call_each(function, records)
        decoded: _Decoded = (records, results)
        if set(map(type, results)) != {dict}:
            return False, decoded
        try:
            output = self.encoder.encode_lines(results)
        except Exception:
            return False, decoded
        self._finish_block(len(block), count, output)
        return True, None

    def batch(
        self,
        lines: list[bytes],
        *,
        ended: bool,
        skip: str | None = None,
        decoded: _Decoded | None = None,
    ) -> None:
        """Process whole ``lines``; with ``skip``, reject the one line given for that reason."""
        if skip is None and max(map(len, lines)) > self.max_line_bytes:
            self._batch_around_oversized(lines, ended=ended)
            return
        stats = self.stats
        self.lines = lines
        self.offsets = None
        skipped_before = stats.blank_lines + stats.rejects + stats.filtered
        out = self.out = bytearray()
        if skip is not None:
            self._reject(0, LINE_TOO_LONG, skip)
        elif self.transform.adder is not None:
            self._adder_batch(lines, self.transform.adder, out, decoded)
        else:
            self._plain_batch(lines, out, decoded)
        skipped = stats.blank_lines + stats.rejects + stats.filtered - skipped_before
        stats.lines += len(lines)
        stats.records += len(lines) - skipped
        if out:
            stats.bytes_out += len(out)
            self.write_output(bytes(out))
        self.line_base += len(lines)
        self.offset_base += sum(map(len, lines)) + len(lines) - (0 if ended else 1)

    def oversized_line(self, head: bytes, size: int, *, ended: bool) -> None:
        """A line of ``size`` bytes (newline excluded) too long to process; ``head`` starts it."""
        self.batch([head], ended=ended, skip=f"line of {size} bytes is longer than the limit")
        # batch() advanced the offset by the head only.
        self.offset_base += size - len(head)

    def _batch_around_oversized(self, lines: list[bytes], *, ended: bool) -> None:
        last = len(lines) - 1
        start = 0
        for index, line in enumerate(lines):
            if len(line) > self.max_line_bytes:
                if start < index:
                    self.batch(lines[start:index], ended=True)
                self.oversized_line(
                    line[:REJECT_TEXT_LIMIT], len(line), ended=ended or index < last
                )
                start = index + 1
        if start <= last:
            self.batch(lines[start:], ended=ended)

    # -- the two loops ------------------------------------------------------------------

    def _adder_batch(
        self,
        lines: list[bytes],
        adder: FieldAdder[Any],
        out: bytearray,
        decoded: _Decoded | None = None,
    ) -> None:
        decode = adder.decoder.decode
        function = adder.function
        declared = adder.probed
        probe = adder.probe
        absent = adder.probe_absent
        encode_into = self.encoder.encode_into
        unsafe = _UNSAFE_BEFORE_CLOSE
        for index, line in enumerate(lines):
            if decoded is None:
                try:
                    record = decode(line)
                except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                    self._bad_line(index, line, exc, adder)
                    continue
            else:
                record = decoded[0][index]
                added = decoded[1][index]
            if not line.isascii():
                try:
                    line.decode()
                except UnicodeDecodeError as exc:
                    self._reject(index, INVALID_JSON, f"invalid UTF-8: {exc.reason}")
                    continue
            try:
                if decoded is None:
                    added = function(record)
                elif type(added) is _Raised:
                    raise added.error
            except RejectRecord as exc:
                self._reject(index, REJECTED, str(exc))
                continue
            except Exception as exc:
                self._reject(index, TRANSFORM_ERROR, _describe(exc))
                continue
            if (
                type(added) is dict
                and added
                and declared.issuperset(added)
                and line[-1] == _CLOSE_BRACE
                and line[-2] not in unsafe
                and probe(record) == absent
            ):
                start = len(out)
                brace = start + len(line) - 1
                out += line
                try:
                    encode_into(added, out, brace)
                except Exception as exc:
                    del out[start:]
                    self._reject(index, TRANSFORM_ERROR, f"cannot encode result: {exc}")
                    continue
                out[brace] = _COMMA
                out.append(_NEWLINE)
            else:
                self._add_carefully(index, line, record, added)

    def _plain_batch(
        self, lines: list[bytes], out: bytearray, decoded: _Decoded | None = None
    ) -> None:
        decode = self.any_decoder.decode
        function = self.transform.function
        encode_into = self.encoder.encode_into
        for index, line in enumerate(lines):
            if decoded is None:
                try:
                    record = decode(line)
                except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                    self._bad_line(index, line, exc, None)
                    continue
            else:
                record = decoded[0][index]
                result = decoded[1][index]
            if type(record) is not dict:
                self._reject(index, NOT_AN_OBJECT, f"expected an object, got {_json_type(record)}")
                continue
            try:
                if decoded is None:
                    result = function(record)
                elif type(result) is _Raised:
                    raise result.error
            except RejectRecord as exc:
                self._reject(index, REJECTED, str(exc))
                continue
            except Exception as exc:
                self._reject(index, TRANSFORM_ERROR, _describe(exc))
                continue
            if result is None:
                self.stats.filtered += 1
                continue
            if not isinstance(result, dict):
                self._reject(
                    index,
                    TRANSFORM_ERROR,
                    f"{self.transform.name} returned {type(result).__name__}; "
                    "expected a dict or None",
                )
                continue
            start = len(out)
            try:
                encode_into(result, out, start)
            except Exception as exc:
                del out[start:]
                self._reject(index, TRANSFORM_ERROR, f"cannot encode result: {exc}")
                continue
            out.append(_NEWLINE)

    # -- the careful paths --------------------------------------------------------------

    def _add_carefully(self, index: int, line: bytes, record: Any, added: Any) -> None:
        """Everything the fast patch does not cover, in full generality."""
        out = self.out
        adder = self.transform.adder
        assert adder is not None
        if added is None:
            self.stats.filtered += 1
            return
        if not isinstance(added, dict):
            self._reject(
                index,
                TRANSFORM_ERROR,
                f"{self.transform.name} returned {type(added).__name__}; "
                "expected a dict of fields to add or None",
            )
            return
        body = line.strip(_JSON_WHITESPACE)
        if not added:
            out += body
            out.append(_NEWLINE)
            return
        conflict = False
        for key in added:
            if not isinstance(key, str):
                self._reject(index, TRANSFORM_ERROR, f"field name {key!r} is not a string")
                return
            if key in adder.probed:
                conflict = getattr(record, key) is not _UNSET
            else:
                conflict = self._needle(key) in body
            if conflict:
                break
        try:
            if conflict:
                merged = self.any_decoder.decode(body)
                merged.update(added)
                patched = self.encoder.encode(merged)
            else:
                addition = self.encoder.encode(added)
                inner = body[:-1].rstrip(_JSON_WHITESPACE)
                if inner[-1] == _OPEN_BRACE:
                    patched = inner + addition[1:]
                else:
                    patched = inner + b"," + addition[1:]
        except Exception as exc:
            self._reject(index, TRANSFORM_ERROR, f"cannot encode result: {exc}")
            return
        out += patched
        out.append(_NEWLINE)

    def _needle(self, key: str) -> bytes:
        needle = self.needles.get(key)
        if needle is None:
            needle = self.needles[key] = self.encoder.encode(key)
        return needle

    def _bad_line(
        self, index: int, line: bytes, exc: Exception, adder: FieldAdder[Any] | None
    ) -> None:
        """Classify a line the decoder refused: blank, not JSON, not an object, wrong fields."""
        if not line.strip(_JSON_WHITESPACE):
            self.stats.blank_lines += 1
            return
        if adder is None or not isinstance(exc, msgspec.ValidationError):
            self._reject(index, INVALID_JSON, _decode_reason(exc))
            return
        # The struct decoder stops at the first field that does not fit; a syntax error
        # further on still makes the line invalid JSON, so decode it in full to tell.
        try:
            document = self.any_decoder.decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError) as full:
            self._reject(index, INVALID_JSON, _decode_reason(full))
            return
        if not isinstance(document, dict):
            self._reject(index, NOT_AN_OBJECT, f"expected an object, got {_json_type(document)}")
            return
        self._reject(index, INVALID_RECORD, str(exc))

    def _reject(self, index: int, error: str, reason: str) -> None:
        stats = self.stats
        stats.rejects += 1
        stats.reject_errors[error] = stats.reject_errors.get(error, 0) + 1
        line = self.lines[index]
        if line.endswith(b"\r"):
            line = line[:-1]
        document = {
            "item_line": self.line_base + index + 1,
            "offset": self._offset(index),
            "error": error,
            "reason": reason[:REJECT_REASON_LIMIT],
            "text": line[:REJECT_TEXT_LIMIT].decode("utf-8", errors="replace"),
        }
        self.write_reject(orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE))

    def _offset(self, index: int) -> int:
        if self.offsets is None:
            self.offsets = list(
                itertools.accumulate(
                    (len(line) + 1 for line in self.lines), initial=self.offset_base
                )
            )
        return self.offsets[index]


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _decode_reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"invalid UTF-8: {exc.reason}"
    return str(exc)


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__
