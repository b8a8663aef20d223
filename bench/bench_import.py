"""ImportSie end to end: the service process importing from a sandbox process over gRPC.

Measured in one run, each against a baseline taken in the same run:
- a ≥ 50 MB year imported through gRPC (raw chunks included), of a company whose vouchers
  have no documents (so the listing of their file connections is one page): throughput as a
  ratio of the SIE reader's own streaming throughput on the same bytes (target ≥ 0.8; the
  median of five runs of each, interleaved) and of the parse alone (what one parser process
  does to the file, without the service: the import's ceiling while one process parses a
  year), and with records too (target ≥ 0.7), time to the
  first progress event, CPU per MB of the service process (target ≤ 20 ms) and of its parser
  processes (not above the 49 ms before issue 24), the ceiling every process's CPU per MB
  together (the caller's and the sandbox's too) sets on the machine's cores, as a share of the
  reader, and the peak memory (VmHWM) of both;
- the same year with its documents (about 115,000 file connections at full size) imported with
  records: every voucher's document count comes from listing them all, so Fortnox's rate
  bounds it: its time, and the import's Fortnox requests per second as a share of the limit
  (target ≥ 0.9);
- 20 tenants importing at once, on one service with SQLite and on 3 replicas sharing
  PostgreSQL: total throughput (target ≥ 17 MB/s, twice the 8.5 before issue 24), and health
  checks answered within 100 ms meanwhile (p99 and max latency of checks sent every 50 ms to
  each service).

``BENCH_SIZE=tiny`` runs each part once at a tiny size.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.bench_sie import measure
from bench.children import child, cpu_seconds
from bench.size import sized
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import sie_import_pb2 as sie_pb
from tests.harness.postgres import running_postgres
from tests.harness.processes import replicas
from tests.harness.service import replica_env, service_env

BIN = Path(sys.executable).parent / "fortnox-bridge"
REDIRECT_URI = "http://localhost:8080/callback"
LARGE_YEAR_VOUCHERS = sized(330_000, 2_000)  # about 51 MB of Fortnox-shaped SIE 4
TENANTS = sized(20, 3)
RUNS = sized(5, 1)
VOUCHERS_PER_YEAR = sized(20_000, 200)  # of each company in the many-tenant run
REPLICAS = sized(3, 2)
#: Twice the total of 20 tenants importing at once before issue 24 (8.5 MB/s, 2026-12-02).
TARGET_TENANTS_MB_S = 2 * 8.5


def _sandbox(*flags: str) -> AbstractContextManager[tuple[int, str]]:
    return child([str(BIN), "sandbox", "--listen", "127.0.0.1:0", *flags],
                    r"sandbox listening on (http://\S+)", dict(os.environ))


def _service(sandbox_url: str, db: Path) -> AbstractContextManager[tuple[int, str]]:
    env = service_env(sandbox_url, db, FORTNOX_RATE_LIMIT_REQUESTS="25",
                      FORTNOX_RATE_LIMIT_WINDOW_S="5", FORTNOX_BRIDGE_LOG_LEVEL="warning")
    return child([str(BIN), "serve"], r"serving on (\S+)", env)


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (the service's SIE parser processes)."""
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


async def _settled(pids: list[int]) -> None:
    """Waits until the processes ``pids`` (and their children) used no CPU for a tenth of a
    second (at most 10 s), so that a baseline is not measured beside an import's last work
    (its digests being written, its spool removed)."""
    started = time.perf_counter()
    everyone = [*pids, *(c for pid in pids for c in _children(pid))]
    used = sum(cpu_seconds(pid) for pid in everyone)
    while time.perf_counter() - started < 10:
        await asyncio.sleep(0.1)
        now = sum(cpu_seconds(pid) for pid in everyone)
        if now == used:
            return
        used = now


def _peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


async def _connect(
    stub: pb_grpc.FortnoxServiceStub, tenant: str, company: int | None = None
) -> None:
    """Links ``tenant`` to a sandbox company (the sandbox's ``tenant`` login parameter)."""
    started = await stub.Connect(pb.ConnectRequest(tenant=tenant, redirect_uri=REDIRECT_URI,
                                                   allow_any_company=True))
    url = httpx.URL(started.authorization_url)
    if company is not None:
        url = url.copy_add_param("tenant", str(company))
    async with httpx.AsyncClient() as http:
        answer = await http.get(url)
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    await stub.CompleteConnect(pb.CompleteConnectRequest(state=query["state"][0],
                                                         code=query["code"][0]))


def _companies(sandbox_url: str) -> list[dict[str, Any]]:
    """The sandbox's seeded companies with their financial years."""
    tenants: list[dict[str, Any]] = httpx.get(f"{sandbox_url}/_sandbox/tenants").json()["tenants"]
    return tenants


def _download(sandbox_url: str, year_id: int, path: Path, company: int | None = None) -> None:
    """The year's export straight from the sandbox (this also warms its export cache)."""
    params = {"client_id": "sandbox-client", "redirect_uri": REDIRECT_URI, "scope": "bookkeeping",
              "state": "bench", "access_type": "offline", "response_type": "code"}
    if company is not None:
        params["tenant"] = str(company)
    answer = httpx.get(f"{sandbox_url}/oauth-v1/auth", params=params)
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    token = httpx.post(f"{sandbox_url}/oauth-v1/token", auth=("sandbox-client", "sandbox-secret"),
                       data={"grant_type": "authorization_code", "code": code,
                             "redirect_uri": REDIRECT_URI}).json()["access_token"]
    with path.open("wb") as out, httpx.stream(
        "GET", f"{sandbox_url}/3/sie/4", params={"financialyear": year_id},
        headers={"Authorization": f"Bearer {token}"}, timeout=300,
    ) as response:
        for chunk in response.iter_bytes():
            out.write(chunk)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _throughput(mode: str, path: Path) -> float:
    """MB/s of ``bench_sie``'s ``mode`` on the file, fed in download-sized chunks: in a fresh
    process, with the collector setting a parser process uses, from after its imports.

    ``sie`` is the reader alone, the baseline (in this process, with the default setting and
    the caller's heap, it read at about 0.7 of that speed, which flattered every ratio against
    it); ``parse`` is what a parser process does to the file without the service around it
    (the reader keeping voucher lines, the controls, the fingerprints): while one process
    parses a year, ImportSie cannot be faster."""
    run = measure(mode, path)
    assert not isinstance(run, str), f"{mode} alone failed: {run}"
    return path.stat().st_size / 1e6 / run["seconds"]


class _Imported:
    """What one ImportSie sent."""

    vouchers = 0  # records
    counted = 0  # records with a document count
    documents = 0  # the counts' sum
    first_records = 0.0  # seconds from the call to the first record batch


async def _import(
    stub: pb_grpc.FortnoxServiceStub, tenant: str, years: list[int], records: bool = False,
    seen: _Imported | None = None,
) -> tuple[float, float, int]:
    """(seconds to first progress, seconds in all, bytes received) of one ImportSie."""
    request = pb.ImportSieRequest(
        tenant=tenant, years=[sie_pb.YearSelector(financial_year_id=y) for y in years],
        include_records=records)
    started = time.perf_counter()
    first = 0.0
    received = 0
    async for message in stub.ImportSie(request):
        kind = message.WhichOneof("event")
        if kind == "progress" and not first:
            first = time.perf_counter() - started
        elif kind == "chunk":
            received += len(message.chunk.data)
        elif kind == "records" and seen is not None:
            seen.first_records = seen.first_records or time.perf_counter() - started
            for voucher in message.records.vouchers:
                seen.vouchers += 1
                seen.counted += voucher.HasField("document_count")
                seen.documents += voucher.document_count
        elif kind == "summary":
            assert message.summary.years, "import ended without years"
    return first, time.perf_counter() - started, received


async def _health_latencies(channel: grpc.aio.Channel, stop: asyncio.Event) -> list[float]:
    health = health_pb2_grpc.HealthStub(channel)
    latencies = []
    while not stop.is_set():
        started = time.perf_counter()
        await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.05)
    return latencies


async def _large_year(work: Path) -> None:
    with _sandbox("--seed", "large", "--large-year-vouchers", str(LARGE_YEAR_VOUCHERS),
                  "--no-voucher-files") as (
        sandbox_pid, sandbox_url
    ), _service(sandbox_url, work / "large.sqlite3") as (service_pid, address):
        company = (await asyncio.to_thread(_companies, sandbox_url))[0]
        year_id = company["financial_years"][-2]["id"]
        sie_file = work / "large.se"
        _download(sandbox_url, year_id, sie_file)
        size_mb = sie_file.stat().st_size / 1e6
        readers, parses, imports, with_records, firsts = [], [], [], [], []
        async with grpc.aio.insecure_channel(
            address, options=[("grpc.max_receive_message_length", 8 << 20)]
        ) as channel:
            stub = pb_grpc.FortnoxServiceStub(channel)
            await _connect(stub, "large")
            service_cpu = parsers_cpu = records_parsers_cpu = records_service_cpu = 0.0
            caller_cpu = records_caller_cpu = sandbox_cpu = records_sandbox_cpu = 0.0
            for _ in range(RUNS):  # interleaved, so both see the same machine
                await _settled([service_pid, sandbox_pid])
                readers.append(_throughput("sie", sie_file))
                parses.append(_throughput("parse", sie_file))
                before = {pid: cpu_seconds(pid) for pid in _children(service_pid)}
                service_before, sandbox_before = cpu_seconds(service_pid), cpu_seconds(
                    sandbox_pid)
                caller_before = time.process_time()
                first, seconds, received = await _import(stub, "large", [year_id])
                caller_cpu += time.process_time() - caller_before
                sandbox_cpu += cpu_seconds(sandbox_pid) - sandbox_before
                service_cpu += cpu_seconds(service_pid) - service_before
                parsers_cpu += sum(  # parsers started during the import count from zero
                    cpu_seconds(pid) - before.get(pid, 0.0) for pid in _children(service_pid)
                )
                assert received == sie_file.stat().st_size, "the import did not stream every byte"
                imports.append(size_mb / seconds)
                firsts.append(first)
                await _settled([service_pid, sandbox_pid])
                before = {pid: cpu_seconds(pid) for pid in _children(service_pid)}
                service_before, sandbox_before = cpu_seconds(service_pid), cpu_seconds(
                    sandbox_pid)
                caller_before = time.process_time()
                with_records.append(size_mb / (await _import(stub, "large", [year_id], True))[1])
                records_caller_cpu += time.process_time() - caller_before
                records_sandbox_cpu += cpu_seconds(sandbox_pid) - sandbox_before
                records_service_cpu += cpu_seconds(service_pid) - service_before
                records_parsers_cpu += sum(
                    cpu_seconds(pid) - before.get(pid, 0.0) for pid in _children(service_pid))
        ratios = [i / r for i, r in zip(imports, readers, strict=True)]
        record_ratios = [i / r for i, r in zip(with_records, readers, strict=True)]
        print(f"large year: {size_mb:.1f} MB, {LARGE_YEAR_VOUCHERS} vouchers, "
              f"median of {RUNS} runs each")
        print(f"  SIE reader alone (baseline)  {statistics.median(readers):6.1f} MB/s  "
              f"(runs {', '.join(f'{r:.1f}' for r in readers)})")
        parse_ratios = [p / r for p, r in zip(parses, readers, strict=True)]
        print(f"  the parse alone (no service) {statistics.median(parses):6.1f} MB/s, "
              f"{statistics.median(parse_ratios):.2f} of the reader (runs "
              f"{', '.join(f'{r:.2f}' for r in parse_ratios)}): ImportSie's ceiling while one "
              "process parses a year")
        print(f"  ImportSie through gRPC       {statistics.median(imports):6.1f} MB/s  "
              f"(runs {', '.join(f'{r:.1f}' for r in imports)})")
        print(f"  ratio {statistics.median(ratios):.2f} (target >= 0.80: "
              f"{_met(statistics.median(ratios) >= 0.8)}), median of the runs' "
              f"ratios {', '.join(f'{r:.2f}' for r in ratios)}; "
              f"{statistics.median(i / p for i, p in zip(imports, parses, strict=True)):.2f} "
              "of the parse alone")
        print(f"  with records (no documents)  {statistics.median(with_records):6.1f} MB/s, ratio "
              f"{statistics.median(record_ratios):.2f} (target >= 0.70: "
              f"{_met(statistics.median(record_ratios) >= 0.7)}), runs "
              f"{', '.join(f'{r:.2f}' for r in record_ratios)}")
        print(f"  first progress event after   {max(firsts) * 1000:6.0f} ms at most "
              "(target < 1000 ms)")
        per_mb = 1000 / RUNS / size_mb
        print(f"  CPU per MB imported          {service_cpu * per_mb:6.1f} ms in the service "
              f"process (target <= 20: {_met(service_cpu * per_mb <= 20)}), "
              f"{parsers_cpu * per_mb:.1f} ms in its parsers (target <= 49, before issue 24: "
              f"{_met(parsers_cpu * per_mb <= 49)})")
        print(f"  with records                 {records_service_cpu * per_mb:6.1f} ms in the "
              f"service, {records_parsers_cpu * per_mb:.1f} ms in its parsers")
        # What the machine's cores do per MB: the caller (this process, decoding the answers)
        # and the sandbox (serving the file) share them with the service.
        for label, cpus in (("without records", (service_cpu, parsers_cpu, caller_cpu,
                                                  sandbox_cpu)),
                            ("with records", (records_service_cpu, records_parsers_cpu,
                                              records_caller_cpu, records_sandbox_cpu))):
            total = sum(cpus) * per_mb
            most = 1000 * (os.cpu_count() or 1) / total
            print(f"  every process, {label:15} {total:6.1f} ms CPU per MB (the caller "
                  f"{cpus[2] * per_mb:.1f}, the sandbox {cpus[3] * per_mb:.1f}): at most "
                  f"{most:.1f} MB/s on {os.cpu_count()} cores, "
                  f"{most / statistics.median(readers):.2f} of the reader however well they "
                  "overlap")
        print(f"  service peak memory (VmHWM)  {_peak_rss_mib(service_pid):6.0f} MiB")
        parsers = ", ".join(f"{_peak_rss_mib(pid):.0f}" for pid in _children(service_pid))
        print(f"  parser processes' peaks      {parsers} MiB")


async def _many_tenants(work: Path) -> None:
    with _sandbox("--vouchers-per-year", str(VOUCHERS_PER_YEAR)) as (
        sandbox_pid, sandbox_url
    ), _service(sandbox_url, work / "many.sqlite3") as (service_pid, address):
        await _tenants_at_once("SQLite, one service", (sandbox_pid, sandbox_url),
                               [(service_pid, address)])


async def _many_tenants_on_replicas() -> None:
    with running_postgres() as server, _sandbox(
        "--vouchers-per-year", str(VOUCHERS_PER_YEAR)
    ) as (sandbox_pid, sandbox_url), replicas(replica_env(
        sandbox_url, database_url=server.create_database("bench"),
        FORTNOX_RATE_LIMIT_REQUESTS="25", FORTNOX_RATE_LIMIT_WINDOW_S="5",
    ), REPLICAS) as serving:
        await _tenants_at_once(f"PostgreSQL, {REPLICAS} replicas", (sandbox_pid, sandbox_url),
                               [(p.process.pid, p.address) for p in serving])


async def _tenants_at_once(
    label: str, sandbox: tuple[int, str], services: list[tuple[int, str]]
) -> None:
    """TENANTS imports at once, spread over ``services`` (pid, address), from ``sandbox``
    (pid, url); health checks sent to each service meanwhile. What bounds the run is printed
    beside it: the CPU per MB of each kind of process, and the Fortnox requests per company
    against the limit (25 per 5 s; the service's window is per company, shared by the tenants
    of one company)."""
    sandbox_pid, sandbox_url = sandbox
    companies = await asyncio.to_thread(_companies, sandbox_url)
    options = [("grpc.max_receive_message_length", 8 << 20)]
    channels = [grpc.aio.insecure_channel(address, options=options) for _, address in services]
    try:
        stubs = [pb_grpc.FortnoxServiceStub(channel) for channel in channels]
        plan = []
        for n in range(TENANTS):
            company = companies[n % len(companies)]
            stub = stubs[n % len(stubs)]
            await _connect(stub, f"t{n}", company["id"])
            plan.append((stub, f"t{n}", company["financial_years"][n % 3]["id"]))
        # The sandbox makes each year's export once and keeps it: made ahead, what is timed
        # is the service's work, not the stand-in's (Fortnox makes its exports on its own
        # machines).
        for company in companies:
            for year in company["financial_years"][:3]:
                await asyncio.to_thread(_download, sandbox_url, year["id"], Path(os.devnull),
                                        company["id"])
        stop = asyncio.Event()
        probes = [asyncio.create_task(_health_latencies(channel, stop)) for channel in channels]
        requests_before = await asyncio.to_thread(_requests_by_company, sandbox_url)
        cpu_before = [cpu_seconds(pid) for pid, _ in services]
        parsers_before = {child: cpu_seconds(child) for pid, _ in services
                          for child in _children(pid)}
        sandbox_before = cpu_seconds(sandbox_pid)
        started = time.perf_counter()
        results = await asyncio.gather(*(_import(stub, t, [y]) for stub, t, y in plan))
        seconds = time.perf_counter() - started
        stop.set()
        sandbox_cpu = cpu_seconds(sandbox_pid) - sandbox_before
        parsers_cpu = sum(  # parsers started during the run count from zero
            cpu_seconds(child) - parsers_before.get(child, 0.0)
            for pid, _ in services for child in _children(pid))
        latencies = [latency for probe in probes for latency in await probe]
        cpu = sum(cpu_seconds(pid) - before
                  for (pid, _), before in zip(services, cpu_before, strict=True))
        requests_after = await asyncio.to_thread(_requests_by_company, sandbox_url)
    finally:
        for channel in channels:
            await channel.close()
    total_mb = sum(r[2] for r in results) / 1e6
    p99 = (statistics.quantiles(latencies, n=100, method="inclusive")[98]
           if len(latencies) > 1 else latencies[0])
    rate = total_mb / seconds
    print(f"{TENANTS} tenants at once ({label}): {total_mb:.1f} MB in {seconds:.1f} s = "
          f"{rate:.1f} MB/s in total (target >= {TARGET_TENANTS_MB_S:.1f}: "
          f"{'met' if rate >= TARGET_TENANTS_MB_S else 'NOT met'}); "
          f"{cpu * 1000 / total_mb:.1f} ms of service CPU per MB")
    print(f"  health checks: {len(latencies)} sent, median "
          f"{statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (target < 100 "
          f"ms: {'met' if p99 < 0.1 else 'NOT met'}), max {max(latencies) * 1000:.0f} ms")
    for pid, _ in services:
        parsers = ", ".join(f"{_peak_rss_mib(child):.0f}" for child in _children(pid))
        print(f"  service {pid}: peak memory {_peak_rss_mib(pid):.0f} MiB, "
              f"parser processes {parsers} MiB")
    print(f"  first progress, slowest tenant {max(r[0] for r in results) * 1000:.0f} ms")
    per_mb = 1000 / total_mb
    print(f"  CPU per MB: {cpu * per_mb:.1f} ms in the service, {parsers_cpu * per_mb:.1f} ms "
          f"in its parsers, {sandbox_cpu * per_mb:.1f} ms in the sandbox (Fortnox's part); "
          f"{(cpu + parsers_cpu) / seconds:.2f} cores busy for the service on "
          f"{os.cpu_count()}")
    made = {company: {status: count - requests_before.get(company, {}).get(status, 0)
                      for status, count in statuses.items()}
            for company, statuses in requests_after.items()}
    sent = {company: sum(statuses.values()) for company, statuses in made.items()}
    refused = sum(statuses.get("429", 0) for statuses in made.values())
    print(f"  Fortnox requests: {sum(sent.values()) / TENANTS:.1f} per import, at most "
          f"{max(sent.values(), default=0)} to one of {len(sent)} companies in the "
          f"{seconds:.1f} s (Fortnox allows 25 per 5 s per company), {refused} refused (429)")


def _requests_by_company(sandbox_url: str) -> dict[str, dict[str, int]]:
    """API answers the sandbox has given so far: per company, per status."""
    stats: dict[str, dict[str, int]] = httpx.get(f"{sandbox_url}/_sandbox/stats").json()[
        "requests"]
    return stats


def _requests(sandbox_url: str) -> int:
    """API answers the sandbox has given so far, over every tenant and status."""
    stats = httpx.get(f"{sandbox_url}/_sandbox/stats").json()["requests"]
    return sum(count for statuses in stats.values() for count in statuses.values())


async def _large_year_with_documents(work: Path) -> None:
    """The large year with its documents, imported with records once: bounded by the listing
    of its file connections at Fortnox's rate."""
    with _sandbox("--seed", "large", "--large-year-vouchers", str(LARGE_YEAR_VOUCHERS)) as (
        _, sandbox_url
    ), _service(sandbox_url, work / "documents.sqlite3") as (_, address):
        company = (await asyncio.to_thread(_companies, sandbox_url))[0]
        year_id = company["financial_years"][-2]["id"]
        _download(sandbox_url, year_id, Path(os.devnull))  # the sandbox's export made ahead
        async with grpc.aio.insecure_channel(
            address, options=[("grpc.max_receive_message_length", 8 << 20)]
        ) as channel:
            stub = pb_grpc.FortnoxServiceStub(channel)
            await _connect(stub, "documents")
            before = await asyncio.to_thread(_requests, sandbox_url)
            seen = _Imported()
            _, seconds, received = await _import(stub, "documents", [year_id], True, seen)
            requests = await asyncio.to_thread(_requests, sandbox_url) - before
    limit = 25 / 5
    # The first record batch leaves once the listing has ended (the file, parsed long before,
    # waits for it): up to then, the import's time is the listing's.
    listing = seen.first_records
    share = requests / listing / limit
    assert seen.vouchers and seen.counted == seen.vouchers, "a voucher without its count"
    print(f"large year with its documents: {received / 1e6:.1f} MB, {seen.vouchers} vouchers "
          f"with {seen.documents} documents, imported with records in {seconds:.1f} s "
          f"(first records after {listing:.1f} s, once the listing ended)")
    print(f"  Fortnox requests of the import {requests}, {requests / listing:.2f} per s up to "
          f"the first records = {share:.2f} of Fortnox's 25 per 5 s (target >= 0.90: "
          f"{_met(share >= 0.9)}); over the whole import {requests / seconds / limit:.2f}")


def main() -> int:
    """Runs the measurements and prints them."""
    with tempfile.TemporaryDirectory(prefix="bench-import-") as work:
        asyncio.run(_large_year(Path(work)))
        asyncio.run(_large_year_with_documents(Path(work)))
        asyncio.run(_many_tenants(Path(work)))
        asyncio.run(_many_tenants_on_replicas())
    return 0


if __name__ == "__main__":
    sys.exit(main())
