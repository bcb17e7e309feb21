"""Split a line-delimited object into newline-aligned byte ranges without reading all of it.

Nominal boundaries fall at multiples of the target size. Each is moved forward to just after
the next ``\\n`` by reading a small probe window there (a ranged GET on S3), widening the probe
while no newline turns up. A line longer than the target therefore makes one range longer
than the target, and nominal boundaries that fall inside it are skipped. A ``\\n`` byte never
occurs inside a multi-byte UTF-8 sequence, so a boundary never splits a character, and CRLF
endings keep their ``\\r`` with the line they end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_PROBE_SIZE = 64 * 1024
# Probes double while they find no newline, up to this size, to keep GETs few on long lines.
MAX_PROBE_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``[start, end)`` of an object: whole lines, the last maybe without ``\\n``."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


def newline_aligned_ranges(
    size: int,
    target: int,
    read: Callable[[int, int], bytes],
    probe_size: int = DEFAULT_PROBE_SIZE,
) -> list[ByteRange]:
    """Contiguous ranges covering ``[0, size)``, each starting at a line's first byte.

    ``read(start, end)`` returns bytes ``[start, end)`` of the object, or fewer at its end.
    Ranges are about ``target`` bytes; none is empty. An empty object has no ranges.
    """
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    if target < 1:
        raise ValueError(f"target must be >= 1, got {target}")
    if probe_size < 1:
        raise ValueError(f"probe_size must be >= 1, got {probe_size}")
    ranges: list[ByteRange] = []
    start = 0
    while start < size:
        nominal = (start // target + 1) * target
        end = size if nominal >= size else _line_end_at_or_after(nominal, size, read, probe_size)
        ranges.append(ByteRange(start, end))
        start = end
    return ranges


def _line_end_at_or_after(
    position: int, size: int, read: Callable[[int, int], bytes], probe_size: int
) -> int:
    """The first line start at or after ``position`` (``0 < position < size``), or ``size``.

    A line starts at ``position`` exactly when the byte before it is a newline, so the search
    begins one byte early.
    """
    cursor = position - 1
    probe = probe_size
    while cursor < size:
        window = read(cursor, min(cursor + probe, size))
        if not window:
            break
        newline = window.find(b"\n")
        if newline >= 0:
            return cursor + newline + 1
        cursor += len(window)
        probe = min(probe * 2, max(probe_size, MAX_PROBE_SIZE))
    return size
