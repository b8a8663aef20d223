"""Choosing between the mypyc-compiled reader modules and their sources."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sie import native

SIE = Path(native.__file__).parent
PROBE = "import sie.native, sie.reader; print(sie.native.active(), sie.reader.__file__)"


def probe(**env: str) -> tuple[bool, str]:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", PROBE],
        env={**os.environ, "SIE_PURE_PYTHON": "", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    active, path = done.stdout.split()
    return active == "True", path


def test_pure_python_is_chosen_on_request() -> None:
    assert probe(SIE_PURE_PYTHON="1") == (False, str(SIE / "reader.py"))


@pytest.mark.skipif(not all(native._built()), reason="make install found no C compiler")
def test_the_compiled_reader_runs_when_built() -> None:
    active, path = probe()
    assert active and path.endswith(".so")
