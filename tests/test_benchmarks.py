"""Every benchmark, run once at its tiny size (``BENCH_SIZE=tiny``), so none rots unnoticed.

The modules are found by the same glob ``make bench`` uses, so a new ``bench/bench_*.py`` is
run here without a change to this file. The figures of a tiny run mean nothing: only that
the bench runs to its end (exit 0) is checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHES = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))


def test_every_bench_module_is_found() -> None:
    assert "bench_import" in BENCHES and "bench_sie" in BENCHES


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", BENCHES)
def test_a_benchmark_runs_at_its_tiny_size(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "BENCH_SIZE": "tiny"}, timeout=580, check=False,
    )
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip(), f"{name} printed nothing"
