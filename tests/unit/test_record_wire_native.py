"""Choosing between the mypyc-compiled record writer and its source (``server.native``).

Each probe imports ``server.record_wire`` in a process of its own from a copy of the
``server`` package's guard, the writer's source and whatever compiled files are given, set
older or newer than the source: the project's own build is never touched.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server import native

SERVER = Path(native.__file__).parent
ROOT = SERVER.parent
PROBE = ("import server.native, server.record_wire; "
         "print(server.native.active(), server.record_wire.__file__)")
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _tree(tmp_path: Path, extension: Path | None, age_s: float) -> Path:
    """A ``server`` package of the guard and the writer, with ``extension`` as its compiled
    module, that much older than the source (negative: newer)."""
    package = tmp_path / "server"
    package.mkdir(parents=True)
    for name in ("__init__.py", "native.py", "record_wire.py"):
        shutil.copy2(SERVER / name, package / name)
    if extension is not None:
        built = package / f"record_wire{SUFFIX}"
        shutil.copy2(extension, built)
        for shared in ROOT.glob("server_native__mypyc*.so"):
            shutil.copy2(shared, tmp_path / shared.name)
        source = (package / "record_wire.py").stat().st_mtime
        os.utime(built, (source - age_s, source - age_s))
    return tmp_path


def _probe(tree: Path, **env: str) -> tuple[bool, str, str]:
    """Whether the compiled writer runs, the file that runs, and what was written to stderr."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "SIE_PURE_PYTHON": "", "PYTHONPATH": f"{tree}{os.pathsep}{ROOT}",
             **env},
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    active, path = done.stdout.split()
    return active == "True", path, done.stderr


def _compiled() -> Path | None:
    return native.built()[0]


def test_a_stale_build_is_not_used(tmp_path: Path) -> None:
    """Even a file that is no extension module at all: it is never loaded once stale."""
    fake = tmp_path / "fake.so"
    fake.write_bytes(b"not an extension module")
    tree = _tree(tmp_path / "tree", _compiled() or fake, age_s=60)
    active, path, errors = _probe(tree)
    assert (active, path) == (False, str(tree / "server" / "record_wire.py"))
    assert "compiled record_wire older than the source" in errors


def test_the_source_runs_without_a_build(tmp_path: Path) -> None:
    active, path, errors = _probe(_tree(tmp_path, None, age_s=0))
    assert (active, path) == (False, str(tmp_path / "server" / "record_wire.py"))
    assert "older than the source" not in errors


@pytest.mark.skipif(_compiled() is None, reason="make install found no C compiler")
def test_a_fresh_build_runs_unless_pure_python_is_asked_for(tmp_path: Path) -> None:
    extension = _compiled()
    assert extension is not None
    tree = _tree(tmp_path, extension, age_s=-60)
    active, path, errors = _probe(tree)
    assert active and path == str(tree / "server" / f"record_wire{SUFFIX}"), errors
    assert _probe(tree, SIE_PURE_PYTHON="1")[:2] == (
        False, str(tree / "server" / "record_wire.py"))
