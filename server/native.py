"""Which record writer runs: the module `make install` compiles with mypyc, or its source.

`server.record_wire` writes ImportSie's record batches in the parser processes, about
1.7 times the reader's own work in Python; `build_sie.py` compiles it in place
(`server/*.so`), and Python prefers that to the `.py` file. The source runs instead when
`SIE_PURE_PYTHON=1` (as for the reader), when the compiled module is missing, or when it is
older than its source (with a warning: an edit never runs stale code), chosen as
`sie.native` chooses for the reader.
"""

from __future__ import annotations

from pathlib import Path

from sie.native import CompiledModules

COMPILED = ("record_wire",)
"""Modules of `server` that `build_sie.py` compiles."""

_SERVER = CompiledModules("server", Path(__file__).resolve().parent, COMPILED,
                          "running it as pure Python")


def built() -> list[Path | None]:
    """Each compiled module's extension file, None where there is none."""
    return _SERVER.built()


def choose() -> None:
    """Make later imports of the compiled module load its source unless its build is usable."""
    _SERVER.choose()


def active() -> bool:
    """Tell whether the record writer that runs is the compiled one."""
    return _SERVER.active("record_wire")
