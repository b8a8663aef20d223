"""The compiled reader and the pure-Python one make exactly the same of every file.

`make install` compiles the reader's hot modules with mypyc, and the compiled modules take
paths of their own (character loops where the interpreter uses string methods), so each
file's complete reading (`results_dump.describe`: every event with its line, the summary,
the controls' result, at several chunk sizes) is compared between the two.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sie import native
from tests.harness.sie_files import ROOT, corpus_files, fixture_files, requires_corpus
from tests.sie.results_dump import describe, generated

compiled_only = pytest.mark.skipif(
    not native.active(),
    reason="the reader is not compiled (SIE_PURE_PYTHON=1, or no C compiler at make install)",
)

_PURE = "import sys; from pathlib import Path; from tests.sie.results_dump import describe; " \
        "[sys.stdout.write(describe(Path(p)) + '\\0') for p in sys.argv[1:]]"


def _pure_descriptions(paths: list[Path]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PURE, *map(str, paths)],
        env={**os.environ, "SIE_PURE_PYTHON": "1"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split("\0")[:-1]


def _agree(paths: list[Path]) -> None:
    pure = _pure_descriptions(paths)
    assert len(pure) == len(paths)
    differing = [p.name for p, text in zip(paths, pure, strict=True) if describe(p) != text]
    assert not differing, f"compiled and pure-Python readings differ: {differing}"


@compiled_only
def test_the_fixtures_read_alike_compiled_and_pure() -> None:
    _agree(fixture_files())


@compiled_only
@requires_corpus
def test_the_corpus_reads_alike_compiled_and_pure() -> None:
    _agree(corpus_files())


@compiled_only
def test_a_fortnox_shaped_file_reads_alike_compiled_and_pure(tmp_path: Path) -> None:
    _agree([generated(tmp_path, 0.3)])
