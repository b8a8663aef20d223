"""``BENCH_SIZE``: ``tiny`` runs a benchmark once at a tiny size in a few seconds (``make test``
runs every benchmark so, so none can rot unnoticed); unset or ``full``, at full size."""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

_SIZES = ("", "full", "tiny")


def tiny() -> bool:
    """Whether this run is the tiny one (its figures mean nothing; it proves the bench runs)."""
    size = os.environ.get("BENCH_SIZE", "")
    if size not in _SIZES:
        raise SystemExit(f"BENCH_SIZE must be one of {', '.join(repr(s) for s in _SIZES)}, "
                         f"not {size!r}")
    return size == "tiny"


def sized(full: T, small: T) -> T:
    """``full``, or ``small`` when the run is tiny."""
    return small if tiny() else full


def verdict(ok: bool) -> int:
    """The exit code of a bench whose targets were (not) met: a missed target fails a full
    run, never a tiny one, whose sizes are too small to meet any."""
    return 0 if ok or tiny() else 1
