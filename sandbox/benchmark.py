"""Benchmark of the large seed: seeding time, SIE export throughput over HTTP versus the same
export generated in-process (the baseline), and the process's peak memory. Run with
``python -m sandbox.benchmark [VOUCHERS]`` (a ``bench/bench_sandbox.py`` can call ``main``)."""

from __future__ import annotations

import resource
import sys
import time

import httpx

from sandbox.sie_export import SieExport
from sandbox.testing import running_sandbox


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    """Print seeding time, in-process and HTTP SIE throughput, their ratio and peak RSS."""
    args = sys.argv[1:] if argv is None else argv
    vouchers = int(args[0]) if args else 200_000
    started = time.perf_counter()
    with running_sandbox(seed="large", large_year_vouchers=vouchers) as sb:
        seeded = time.perf_counter() - started
        books = next(iter(sb.state.books.values()))
        year = books.tenant.years[-2]
        books.balances(year.id)
        rss_seeded = _rss_mib()

        started = time.perf_counter()
        size = sum(len(c) for c in SieExport(books, year, 4, year.to_date, 65536).chunks())
        local = time.perf_counter() - started

        token = sb.tokens()["access_token"]
        started = time.perf_counter()
        received = 0
        with httpx.stream("GET", f"{sb.api_url}/sie/4", params={"financialyear": year.id},
                          headers={"Authorization": f"Bearer {token}"}, timeout=600) as answer:
            for chunk in answer.iter_raw():
                received += len(chunk)
        remote = time.perf_counter() - started
    mib = size / 2**20
    print(f"vouchers in the big year: {len(books.vouchers(year.id))}")
    print(f"seeding: {seeded:.2f} s")
    print(f"SIE 4 size: {mib:.1f} MiB (HTTP received {received / 2**20:.1f} MiB)")
    print(f"in-process export (baseline): {mib / local:.1f} MiB/s")
    print(f"HTTP streamed export: {mib / remote:.1f} MiB/s "
          f"(ratio to baseline {local / remote:.2f})")
    print(f"peak RSS after seeding: {rss_seeded:.0f} MiB; after both exports: {_rss_mib():.0f} "
          f"MiB (growth {_rss_mib() - rss_seeded:.0f} MiB for a {mib:.0f} MiB file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
