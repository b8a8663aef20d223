"""ExportVouchers benchmark: 1,000 vouchers through gRPC into the sandbox.

Reports:

* the achieved request rate as a ratio of the rate limit (target >= 0.9, no 429). Fortnox
  allows 25 requests per 5 s; here the limit is 100 per 1 s so a run takes seconds, not
  minutes. The adapter's limiter dates each slot by its answer, so a slot lasts the window
  plus one round trip: the ratio is about window / (window + latency), and a 1 s window
  keeps latency/window near what it is against Fortnox (0.1-0.3 s per 5 s);
* the service's own overhead per voucher: with the limit out of the way, the time per voucher
  of the whole gRPC export minus the time per voucher of the adapter posting the same number
  of vouchers directly, as many at a time as the exporter does (validation, the two SQLite
  writes per voucher, protobuf and gRPC).

The sandbox runs in a process of its own (as Fortnox is not in ours): in a thread of this
process, its request handling took about a third of the interpreter lock from the service it
stands in for, so its cost was counted as the service's.

Run: `.venv/bin/python -m bench.bench_exports [--count 1000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

from bench.children import child
from bench.size import sized, verdict
from core.fortnox_api import NewVoucher, VoucherRow
from sandbox.options import SandboxOptions
from sandbox.state import SandboxState
from sandbox.testing import SandboxHandle
from tests.harness.bridge import TENANT, serving_bridge
from tests.harness.connect import connect
from tests.harness.vouchers import many, request

TARGET_RATIO = 0.9
LIMIT, WINDOW_S = 100, 1.0
IN_FLIGHT = 8  # the exporter's default
DAY = date(2025, 12, 31)


def _too_many(sb: SandboxHandle) -> int:
    return sum(int(by_status.get("429", 0)) for by_status in sb.stats()["requests"].values())


async def _rated(sb: SandboxHandle, count: int, tmp: Path) -> dict[str, float]:
    sb.reset()
    sb.set_rate_limit(LIMIT, WINDOW_S)
    async with serving_bridge(sb, tmp / "rated", rate_limit=LIMIT, window_s=WINDOW_S) as bridge:
        await connect(bridge.stub, TENANT, sb.tenants[0])
        await asyncio.sleep(WINDOW_S)  # start with an empty window
        before = sum(int(n) for s in sb.stats()["requests"].values() for n in s.values())
        started = time.perf_counter()
        response = await bridge.stub.ExportVouchers(request(TENANT, many("b", DAY, count)))
        elapsed = time.perf_counter() - started
        after = sum(int(n) for s in sb.stats()["requests"].values() for n in s.values())
    assert len(response.results) == count and len(sb.created_vouchers(sb.tenants[0].id)) == count
    calls = after - before
    limit_rate = LIMIT / WINDOW_S
    return {"vouchers": count, "fortnox_calls": calls, "seconds": round(elapsed, 2),
            "calls_per_s": round(calls / elapsed, 1), "limit_per_s": limit_rate,
            "ratio_of_limit": round(calls / elapsed / limit_rate, 3), "http_429": _too_many(sb)}


async def _overhead(sb: SandboxHandle, count: int, tmp: Path) -> dict[str, float]:
    sb.reset()
    sb.set_rate_limit(1_000_000, 1.0)
    async with serving_bridge(sb, tmp / "free") as bridge:
        await connect(bridge.stub, TENANT, sb.tenants[0])
        year = await bridge.adapter.api.financial_year_for_date(TENANT, DAY)
        assert year is not None
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def post(n: int) -> None:
            async with gate:
                await bridge.adapter.api.create_voucher(TENANT, year.id, NewVoucher(
                    "I", DAY, "Direkt", (VoucherRow(6110, debit=Decimal(n + 1)),
                                         VoucherRow(1930, credit=Decimal(n + 1))),
                    comments=f"direct-{n}"))

        started = time.perf_counter()
        await asyncio.gather(*(post(n) for n in range(count)))
        direct = (time.perf_counter() - started) / count
        started = time.perf_counter()
        await bridge.stub.ExportVouchers(request(TENANT, many("o", DAY, count)))
        service = (time.perf_counter() - started) / count
    return {"direct_post_ms": round(direct * 1000, 3), "via_service_ms": round(service * 1000, 3),
            "overhead_per_voucher_ms": round((service - direct) * 1000, 3)}


@contextmanager
def _sandbox_process() -> Iterator[SandboxHandle]:
    """``python -m sandbox`` in a process of its own, steered through a handle over HTTP (the
    handle's own state is the same seed's, built here and unused)."""
    options = replace(SandboxOptions(), vouchers_per_year=30)
    with child([sys.executable, "-m", "sandbox", "--listen", "127.0.0.1:0",
                "--vouchers-per-year", str(options.vouchers_per_year)],
               r"sandbox listening on (http://\S+)", dict(os.environ)) as (_, url):
        handle = SandboxHandle(url, options, SandboxState(options))
        try:
            yield handle
        finally:
            handle.close()


async def _run(count: int) -> dict[str, object]:
    with _sandbox_process() as sb, tempfile.TemporaryDirectory() as tmp:
        rated = await _rated(sb, count, Path(tmp))
        overhead = await _overhead(sb, count, Path(tmp))
    ok = rated["ratio_of_limit"] >= TARGET_RATIO and rated["http_429"] == 0
    return {"rate": rated, "overhead": overhead, "target_ratio": TARGET_RATIO, "ok": ok}


def main() -> int:
    """Runs the benchmark and prints one JSON object; exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=sized(1000, 30))
    result = asyncio.run(_run(parser.parse_args().count))
    print(json.dumps(result, indent=2))
    return verdict(bool(result["ok"]))


if __name__ == "__main__":
    raise SystemExit(main())
