"""Where the SIE tests find their files: the project's own fixtures, always there, and the
shared third-party corpus beside the clone, there on CI and on most desks but not in a fresh
clone. Tests over the corpus carry `requires_corpus`; the top-level conftest says loudly when
they were skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "sie"
CORPUS = Path(os.environ.get("SIE_CORPUS") or ROOT.parent / "shared" / "sie-corpus")
"""Beside the clone, or where `SIE_CORPUS` says (a git worktree is one level deeper)."""
CORPUS_SKIP_REASON = f"shared SIE corpus not found at {CORPUS}: third-party conformance skipped"

requires_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=CORPUS_SKIP_REASON)


def fixture_files() -> list[Path]:
    """Every SIE file of the project's own fixtures."""
    return sorted(p for p in FIXTURES.iterdir() if p.suffix.lower() in (".se", ".si"))


def corpus_files() -> list[Path]:
    """Every SIE sample of the shared corpus (not the byrokrat `.errors` oracles); none
    when the corpus is absent."""
    return sorted(
        p
        for p in CORPUS.rglob("*")
        if p.is_file() and p.name != "SOURCES.md" and "errors-expected" not in p.parts
    )
