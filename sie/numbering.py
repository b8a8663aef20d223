"""Duplicate voucher-number detection in memory bounded by series, not vouchers.

Numbers of one series normally ascend (spec §#VER), so the numeric numbers seen are kept
as a sorted list of disjoint closed ranges that an ascending run extends in place.
Non-numeric numbers (rare) fall back to a set.
"""

from __future__ import annotations

import bisect

from sie.values import ascii_number


class _Ranges:
    __slots__ = ("ends", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, number: int) -> bool:
        """Insert `number`; return False if it was already present."""
        starts, ends = self.starts, self.ends
        if ends and number == ends[-1] + 1:  # the common case: the next number
            ends[-1] = number
            return True
        pos = bisect.bisect_right(starts, number) - 1
        if pos >= 0 and number <= ends[pos]:
            return False
        if pos >= 0 and number == ends[pos] + 1:
            ends[pos] = number
            self._merge(pos)
        elif pos + 1 < len(starts) and number == starts[pos + 1] - 1:
            starts[pos + 1] = number
        else:
            starts.insert(pos + 1, number)
            ends.insert(pos + 1, number)
        return True

    def _merge(self, pos: int) -> None:
        if pos + 1 < len(self.starts) and self.ends[pos] + 1 == self.starts[pos + 1]:
            self.ends[pos] = self.ends[pos + 1]
            del self.starts[pos + 1], self.ends[pos + 1]


class VoucherNumbers:
    """Remembers (series, number) pairs; tells when one repeats."""

    __slots__ = ("_other", "_ranges")

    def __init__(self) -> None:
        self._ranges: dict[str, _Ranges] = {}
        self._other: set[tuple[str, str]] = set()

    def add(self, series: str, number: str) -> bool:
        """Record a voucher; return False if its number already occurred in its series."""
        value = ascii_number(number)
        if value is not None:
            ranges = self._ranges.get(series)
            if ranges is None:
                ranges = self._ranges[series] = _Ranges()
            return ranges.add(value)
        key = (series, number)
        if key in self._other:
            return False
        self._other.add(key)
        return True
