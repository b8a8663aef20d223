"""The fencing window of a voucher export: from the last proof that the claim is still held
(``HeldClaim.still_held``, a renewal in the database) to the POST leaving for Fortnox.

A worker paused longer than the lease exactly inside this window could still post after a
take-over; everywhere else the proof or a fenced write stops it. Measured on the path the
exporter uses: ``create_voucher(..., proof=...)`` through the transport (token, rate-limit
slot, proof, then httpx), as many at a time as the exporter posts (8), against the sandbox,
on SQLite and PostgreSQL. The end of the window is where the transport hands the request to the
connection pools (``SplitPools.handle_async_request``).

Reports per backend the window's median, 99th percentile and maximum, and the proof's own
round trip. ``BENCH_SIZE=tiny`` runs a few POSTs; otherwise 400.

Run: `.venv/bin/python -m bench.bench_fence_window`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from adapters.fortnox import FortnoxAdapter
from adapters.postgres.stores import PostgresStores
from adapters.sqlite import SqliteStores
from bench.size import sized
from core.fortnox_api import NewVoucher, VoucherRow
from core.stores import Stores
from core.voucher_export.held_claim import HeldClaim
from sandbox.testing import SandboxHandle, running_sandbox
from tests.harness.connect import connect_adapter
from tests.harness.postgres import shared_server
from tests.harness.sandbox import SMALL_SEED, fresh
from tests.harness.service import sandbox_settings

TENANT = "bench"
TOKEN_KEY = bytes(range(32))
IN_FLIGHT = 8
LEASE = timedelta(seconds=65)
DAY = date(2025, 12, 31)


@asynccontextmanager
async def _stores(backend: str, tmp: Path) -> AsyncIterator[Stores]:
    stores: Stores
    if backend == "postgres":
        stores = await PostgresStores.open(shared_server().create_database(), TOKEN_KEY)
    else:
        stores = SqliteStores(tmp / "bench.sqlite3", TOKEN_KEY)
    try:
        yield stores
    finally:
        await stores.aclose()


async def _measure(sb: SandboxHandle, backend: str, count: int, tmp: Path) -> dict[str, object]:
    fresh(sb)
    settings = sandbox_settings(sb.base_url, rate_limit_requests=100_000,
                                rate_limit_window_s=1.0)
    proved: dict[str, float] = {}
    windows: list[float] = []
    proofs: list[float] = []

    def sent(request: httpx.Request) -> None:
        key = json.loads(request.content)["Voucher"]["Comments"] if request.content else ""
        if key in proved:
            windows.append(time.perf_counter() - proved.pop(key))

    async with _stores(backend, tmp) as stores, FortnoxAdapter(settings, stores.tokens) as adapter:
        await connect_adapter(adapter, TENANT, sb.tenants[0].id)
        # The window ends where the transport hands the request to the pools.
        pools = adapter._http._transport
        handle = pools.handle_async_request

        async def handing(request: httpx.Request) -> httpx.Response:
            sent(request)
            return await handle(request)

        pools.handle_async_request = handing  # type: ignore[method-assign]
        years = await adapter.api.financial_years(TENANT)
        year = next(y for y in years if y.contains(DAY))
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(n: int) -> None:
            ext = f"w{n}"
            amount = Decimal(n + 1)
            voucher = NewVoucher("I", DAY, f"bench {ext}", (
                VoucherRow(6110, debit=amount), VoucherRow(1930, credit=amount)), comments=ext)
            async with gate:  # as the exporter: claim, then post, 8 vouchers at a time
                claim = await stores.exports.claim(
                    TENANT, ext, "r", "d", f"m{n}", year.id, "me", series="I", owner="bench",
                    lease=LEASE)
                assert claim.fence is not None
                held = HeldClaim(stores.exports, TENANT, ext, claim.fence, LEASE)

                async def proof() -> None:
                    started = time.perf_counter()
                    await held.still_held()
                    proved[ext] = time.perf_counter()
                    proofs.append(proved[ext] - started)

                await adapter.api.create_voucher(TENANT, year.id, voucher, proof=proof)

        await asyncio.gather(*(one(n) for n in range(count)))
    ms = sorted(w * 1000 for w in windows)
    assert len(ms) == count, f"{len(ms)} of {count} POSTs were seen leaving"
    return {
        "backend": backend, "posts": len(ms),
        "window_median_ms": round(statistics.median(ms), 3),
        "window_p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
        "window_max_ms": round(ms[-1], 3),
        "proof_median_ms": round(statistics.median(proofs) * 1000, 3),
    }


async def main() -> None:
    count = sized(400, 16)
    with running_sandbox(**SMALL_SEED) as sb, tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgres"):
            folder = Path(tmp) / backend
            folder.mkdir()
            print(json.dumps(await _measure(sb, backend, count, folder)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
