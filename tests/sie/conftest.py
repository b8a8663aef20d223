"""Shared paths for the SIE tests."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "sie-corpus"


def corpus_files() -> list[Path]:
    """Every SIE sample of the shared corpus (not the byrokrat `.errors` oracles)."""
    return sorted(
        p
        for p in CORPUS.rglob("*")
        if p.is_file() and p.name != "SOURCES.md" and "errors-expected" not in p.parts
    )
