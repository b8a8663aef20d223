"""Replicas benchmark: three ``fortnox-bridge serve`` processes on one PostgreSQL database.

Reports:

* **rate**: 20 tenants, linked to the sandbox's 3 companies (Fortnox limits per company, so
  6-7 tenants share each company's window), each exporting vouchers and importing its SIE
  years and ledgers at once, spread over the 3 replicas: 429s seen by the sandbox (target 0),
  and the worst company's share of the limit, ``(calls - limit) / elapsed`` over
  ``limit / window`` as in ``bench_fortnox`` (target >= 0.9), under Fortnox's own 25 per 5 s
  (a slot counts until its answer, so a shorter window would weigh latency more);
  The same run on one SQLite file shared by the 3 replicas is the baseline of the same run;
* **overhead**: a replica on each backend, the limit out of the way, 200 vouchers in one
  ExportVouchers (after a warm-up export, 3 runs interleaved, median): the time per voucher
  on PostgreSQL as a ratio of SQLite's, and what PostgreSQL adds per voucher (its stores'
  round trips and the shared rate window's, against SQLite's in-process file).

Every process (sandbox, replicas, PostgreSQL) shares the machine's cores with this one.
Run: ``.venv/bin/python -m bench.bench_replicas``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx

from bench.size import sized, verdict
from sandbox.options import DEMO_REDIRECT_URIS
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.postgres import running_postgres
from tests.harness.processes import replicas
from tests.harness.sandbox import SandboxProcess, sandbox_process
from tests.harness.service import replica_env
from tests.harness.vouchers import many, request

LIMIT, WINDOW_S = 25, sized(5.0, 0.5)  # Fortnox's own
TENANTS, REPLICAS, VOUCHERS_EACH = sized((20, 3, 20), (3, 2, 2))
OVERHEAD_VOUCHERS, IN_FLIGHT, RUNS = sized((200, 8, 3), (10, 8, 1))
TARGET_RATIO = 0.9
DAY = date(2025, 12, 31)


async def _connect(address: str, tenant: str, company: int) -> None:
    """Connect, the customer's login into ``company`` at the sandbox, CompleteConnect."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.FortnoxServiceStub(channel)
        # The bench does not know the companies' numbers; its login is started right here.
        started = await stub.Connect(pb.ConnectRequest(
            tenant=tenant, redirect_uri=DEMO_REDIRECT_URIS[0], allow_any_company=True))
        async with httpx.AsyncClient() as http:
            login = await http.get(f"{started.authorization_url}&tenant={company}")
        code = parse_qs(urlsplit(login.headers["location"]).query)["code"][0]
        await stub.CompleteConnect(pb.CompleteConnectRequest(state=started.state, code=code))


def _requests(sandbox: SandboxProcess) -> dict[str, dict[str, int]]:
    stats: dict[str, dict[str, int]] = sandbox.control("GET", "/stats")["requests"]
    return stats


def _calls(stats: dict[str, dict[str, int]], company: str) -> int:
    return sum(int(n) for n in stats.get(company, {}).values())


async def _work(address: str, tenant: str) -> float:
    """One tenant's share of the load: an export, its SIE years and its ledgers, at once;
    returns when the last of them answered (perf_counter)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.FortnoxServiceStub(channel)

        async def sie() -> None:
            async for _ in stub.ImportSie(pb.ImportSieRequest(tenant=tenant,
                                                              omit_raw_chunks=True)):
                pass

        async def export() -> None:
            await stub.ExportVouchers(request(tenant, many(tenant, DAY, VOUCHERS_EACH)),
                                      timeout=600)

        async def ledgers() -> None:
            async for _ in stub.ImportLedgers(pb.ImportLedgersRequest(
                    tenant=tenant, balance_date={"year": DAY.year, "month": DAY.month,
                                                 "day": DAY.day}), timeout=600):
                pass

        await asyncio.gather(export(), sie(), ledgers())
    return time.perf_counter()


async def _rated(database: dict[str, Any]) -> dict[str, Any]:
    with sandbox_process("--seed", "default", "--vouchers-per-year", "60",
                         "--rate-limit", str(LIMIT), "--rate-window", str(WINDOW_S)) as sandbox:
        companies = [str(t["id"]) for t in sandbox.control("GET", "/tenants")["tenants"]]
        env = replica_env(sandbox.url, **database, FORTNOX_RATE_LIMIT_REQUESTS=str(LIMIT),
                          FORTNOX_RATE_LIMIT_WINDOW_S=str(WINDOW_S))
        with replicas(env, REPLICAS) as serving:
            addresses = [p.address for p in serving]
            tenants = [(f"t{i:02d}", companies[i % len(companies)]) for i in range(TENANTS)]
            for i, (tenant, company) in enumerate(tenants):
                await _connect(addresses[i % REPLICAS], tenant, int(company))
            await asyncio.sleep(WINDOW_S)  # start with empty windows
            before = _requests(sandbox)
            started = time.perf_counter()
            finished = await asyncio.gather(*(
                _work(addresses[i % REPLICAS], tenant) for i, (tenant, _) in enumerate(tenants)))
            after = _requests(sandbox)
    shares = {}
    for company in companies:
        done = max(t for t, (_, c) in zip(finished, tenants, strict=True) if c == company)
        calls = _calls(after, company) - _calls(before, company)
        shares[company] = round((calls - LIMIT) / (done - started) / (LIMIT / WINDOW_S), 3)
    too_many = sum(int(s.get("429", 0)) for s in after.values())
    return {"replicas": REPLICAS, "tenants": TENANTS, "companies": len(companies),
            "limit": f"{LIMIT} per {WINDOW_S} s", "http_429": too_many,
            "share_of_limit_by_company": shares, "worst_share": min(shares.values()),
            "seconds": round(max(finished) - started, 2)}


async def _service_ms(address: str, tenant: str, run: int) -> float:
    """Time per voucher of one ExportVouchers of new vouchers through the replica."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.FortnoxServiceStub(channel)
        call = request(tenant, many(f"{tenant}-{run}", DAY, OVERHEAD_VOUCHERS))
        started = time.perf_counter()
        await stub.ExportVouchers(call, timeout=600)
        return (time.perf_counter() - started) / OVERHEAD_VOUCHERS * 1000


async def _overhead(database_url: str, tmp: Path) -> dict[str, Any]:
    """A replica on each backend side by side, warmed by one export, then RUNS exports on
    each, interleaved; the median time per voucher of each."""
    with sandbox_process() as sandbox, ExitStack() as stack:
        company = int(sandbox.tenant_id)
        served = {name: stack.enter_context(replicas(replica_env(sandbox.url, **db), 1))[0]
                  for name, db in (("postgres", {"database_url": database_url}),
                                   ("sqlite", {"db_path": tmp / "bridge.sqlite3"}))}
        for name, replica in served.items():
            await _connect(replica.address, name, company)
            await _service_ms(replica.address, name, -1)
        times: dict[str, list[float]] = {name: [] for name in served}
        for run in range(RUNS):
            for name, replica in served.items():
                times[name].append(await _service_ms(replica.address, name, run))
    pg, sqlite = (statistics.median(times[name]) for name in ("postgres", "sqlite"))
    return {"vouchers": OVERHEAD_VOUCHERS, "runs": RUNS,
            "postgres_ms_per_voucher": round(pg, 3), "sqlite_ms_per_voucher": round(sqlite, 3),
            "postgres_adds_ms_per_voucher": round(pg - sqlite, 3),
            "postgres_over_sqlite": round(pg / sqlite, 3)}


async def _run() -> dict[str, Any]:
    with running_postgres() as server, tempfile.TemporaryDirectory() as tmp:
        rated = await _rated({"database_url": server.create_database("bench")})
        baseline = await _rated({"db_path": Path(tmp) / "rated.sqlite3"})
        overhead = await _overhead(server.create_database("bench"), Path(tmp))
    ok = rated["http_429"] == 0 and rated["worst_share"] >= TARGET_RATIO
    return {"rate_postgres": rated, "rate_sqlite_same_machine": baseline,
            "overhead": overhead, "target_ratio": TARGET_RATIO, "ok": ok}


def main() -> int:
    """Runs the benchmark and prints one JSON object; exit 1 when a target is missed."""
    result = asyncio.run(_run())
    print(json.dumps(result, indent=2))
    return verdict(bool(result["ok"]))


if __name__ == "__main__":
    raise SystemExit(main())
