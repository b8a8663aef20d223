"""Which reader runs: the modules `make install` compiles with mypyc, or their sources.

The compiled modules are these same typed sources, built in place (`sie/*.so`, see
`build_sie.py`); Python prefers them to the `.py` files. The sources run instead when
`SIE_PURE_PYTHON=1` (the tests read the corpus both ways), when any of them is missing,
or when any is older than its source (with a warning: an edit never runs stale code).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

COMPILED = (
    "charset",
    "checksum",
    "controls.trial_balance",
    "numbering",
    "reader",
    "reader_base",
    "record_handlers",
    "tokens",
    "values",
    "voucher_handlers",
)
"""Modules of `sie` that `build_sie.py` compiles: the reader's hot path and what it calls,
and the year-end controls' per-voucher accumulator."""

_HERE = Path(__file__).resolve().parent


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' `.py` sources ahead of their extension modules."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != "sie" or name not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, _source(name))


def _source(name: str) -> Path:
    return _HERE.joinpath(*name.split(".")).with_suffix(".py")


def _built() -> list[Path | None]:
    """Each compiled module's extension file, None where there is none."""
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    return [
        next((p for s in suffixes if (p := _source(name).with_suffix(s)).is_file()), None)
        for name in COMPILED
    ]


def choose() -> None:
    """Make later imports of the compiled modules load their sources unless all are usable."""
    built = _built()
    if os.environ.get("SIE_PURE_PYTHON") != "1" and all(built):
        stale = [
            name
            for name, so in zip(COMPILED, built, strict=True)
            if so is not None and so.stat().st_mtime < _source(name).stat().st_mtime
        ]
        if not stale:
            return
        warnings.warn(
            f"sie: compiled {', '.join(stale)} older than the source; reading with the "
            "pure-Python reader until `make install` compiles it again",
            stacklevel=2,
        )
    if not any(isinstance(f, _SourcesFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourcesFirst())


def active() -> bool:
    """Tell whether the reader that runs is the compiled one."""
    module = sys.modules.get("sie.reader")
    return module is not None and not (module.__file__ or "").endswith(".py")
