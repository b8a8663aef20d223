"""Which reader runs: the modules `make install` compiles with mypyc, or their sources.

The compiled modules are these same typed sources, built in place (`sie/*.so`, see
`build_sie.py`); Python prefers them to the `.py` files. The sources run instead when
`SIE_PURE_PYTHON=1` (the tests read the corpus both ways), when any of them is missing,
or when any is older than its source (with a warning: an edit never runs stale code).
`CompiledModules` is that choice for any package, so the service's compiled record writer
(`server.native`) is guarded the same way.
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
    "batches",
    "charset",
    "checksum",
    "controls.trial_balance",
    "fingerprints",
    "numbering",
    "reader",
    "reader_base",
    "record_handlers",
    "tokens",
    "values",
    "voucher_handlers",
)
"""Modules of `sie` that `build_sie.py` compiles: the reader's hot path and what it calls,
the year-end controls' per-voucher accumulator, the vouchers' fingerprints, and the records'
batches to send."""


class CompiledModules(importlib.abc.MetaPathFinder):
    """Modules of ``package`` (in ``folder``) that may run compiled; once ``choose`` decides
    against the compiled build, this finder gives their `.py` sources ahead of it."""

    def __init__(self, package: str, folder: Path, modules: tuple[str, ...],
                 instead: str) -> None:
        self.package, self.folder, self.modules = package, folder, modules
        self._instead = instead  # what the warning says runs meanwhile

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != self.package or name not in self.modules:
            return None
        return importlib.util.spec_from_file_location(fullname, self.source(name))

    def source(self, name: str) -> Path:
        """The `.py` file of module ``name``."""
        return self.folder.joinpath(*name.split(".")).with_suffix(".py")

    def built(self) -> list[Path | None]:
        """Each compiled module's extension file, None where there is none."""
        suffixes = importlib.machinery.EXTENSION_SUFFIXES
        return [
            next((p for s in suffixes if (p := self.source(name).with_suffix(s)).is_file()), None)
            for name in self.modules
        ]

    def choose(self) -> None:
        """Make later imports of the modules load their sources unless all builds are usable."""
        built = self.built()
        if os.environ.get("SIE_PURE_PYTHON") != "1" and all(built):
            stale = [
                name
                for name, so in zip(self.modules, built, strict=True)
                if so is not None and so.stat().st_mtime < self.source(name).stat().st_mtime
            ]
            if not stale:
                return
            warnings.warn(
                f"{self.package}: compiled {', '.join(stale)} older than the source; "
                f"{self._instead} until `make install` compiles it again",
                stacklevel=3,
            )
        if not any(isinstance(f, CompiledModules) and f.package == self.package
                   for f in sys.meta_path):
            sys.meta_path.insert(0, self)

    def active(self, module: str) -> bool:
        """Tell whether ``module``, once imported, is the compiled build."""
        loaded = sys.modules.get(f"{self.package}.{module}")
        return loaded is not None and not (loaded.__file__ or "").endswith(".py")


_SIE = CompiledModules("sie", Path(__file__).resolve().parent, COMPILED,
                       "reading with the pure-Python reader")


def _built() -> list[Path | None]:
    return _SIE.built()


def choose() -> None:
    """Make later imports of the compiled modules load their sources unless all are usable."""
    _SIE.choose()


def active() -> bool:
    """Tell whether the reader that runs is the compiled one."""
    return _SIE.active("reader")
