"""Which record writer runs: the module `make install` compiles with mypyc, or its source.

`server.record_wire` writes ImportSie's record batches in the parser processes, about
1.7 times the reader's own work in Python; `build_sie.py` compiles it in place
(`server/*.so`), and Python prefers that to the `.py` file. The source runs instead when
`SIE_PURE_PYTHON=1` (as for the reader), when the compiled module is missing, or when it is
older than its source (with a warning: an edit never runs stale code). The reader's own
choice is `sie.native`'s; this is the service floor's, since `sie` knows nothing of ours.
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

COMPILED = ("record_wire",)
"""Modules of `server` that `build_sie.py` compiles."""

_HERE = Path(__file__).resolve().parent


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' `.py` sources ahead of their extension modules."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != "server" or name not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, _source(name))


def _source(name: str) -> Path:
    return _HERE.joinpath(*name.split(".")).with_suffix(".py")


def built() -> list[Path | None]:
    """Each compiled module's extension file, None where there is none."""
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    return [
        next((p for s in suffixes if (p := _source(name).with_suffix(s)).is_file()), None)
        for name in COMPILED
    ]


def choose() -> None:
    """Make later imports of the compiled modules load their sources unless all are usable."""
    extensions = built()
    if os.environ.get("SIE_PURE_PYTHON") != "1" and all(extensions):
        stale = [
            name
            for name, so in zip(COMPILED, extensions, strict=True)
            if so is not None and so.stat().st_mtime < _source(name).stat().st_mtime
        ]
        if not stale:
            return
        warnings.warn(
            f"server: compiled {', '.join(stale)} older than the source; running it as pure "
            "Python until `make install` compiles it again",
            stacklevel=2,
        )
    if not any(isinstance(f, _SourcesFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourcesFirst())


def active() -> bool:
    """Tell whether the record writer that runs is the compiled one."""
    module = sys.modules.get("server.record_wire")
    return module is not None and not (module.__file__ or "").endswith(".py")
