"""Fortnox's change feed benchmark: 1,000 watched tenants (each its own sandbox company), the
service as one ``serve`` process holding the feed, the sandbox's events to a consumer.

Reports:

* events per second from the sandbox to the consumer: one burst of ``--events`` vouchers
  booked round-robin over the companies, from the burst's request to the last change
  received on the consumer's streams (ten ``StreamBookChanges`` calls of 100 tenants);
* lag from each event's timestamp (the sandbox's clock, which is this machine's) to its
  arrival at the consumer, p50/p99: for the burst, and for paced events (bursts of 10 every
  0.2 s), which is what a steady feed sees;
* the serve process's peak memory (VmHWM), the holder's.

``BENCH_SIZE=tiny`` runs 10 tenants and 50 events in a few seconds.

Run: `.venv/bin/python -m bench.bench_feed [--tenants 1000] [--events 1000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.protobuf.duration_pb2 import Duration

from bench.size import tiny
from sandbox.testing import SandboxHandle, running_sandbox
from spiris.skattbokslut.fortnox.v1 import book_changes_pb2 as bc
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import complete, log_in, start
from tests.harness.processes import serving
from tests.harness.service import replica_env

TINY = tiny()
PER_STREAM = 100  # StreamBookChanges takes at most 100 tenants
WAIT_S = 600.0


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _connect_all(stub: pb_grpc.FortnoxServiceStub, companies: list[int]) -> list[str]:
    gate = asyncio.Semaphore(16)

    async def one(n: int, company: int) -> str:
        tenant = f"bench-{n:04d}"
        async with gate:
            started = await start(stub, tenant)
            back = await asyncio.to_thread(log_in, started.authorization_url, company=company)
            await complete(stub, back)
            await stub.WatchTenant(bc.WatchTenantRequest(
                tenant=tenant, duration=Duration(seconds=86400)))
        return tenant

    return list(await asyncio.gather(*(one(n, c) for n, c in enumerate(companies))))


async def _all_on_feed(stub: pb_grpc.FortnoxServiceStub, count: int) -> float:
    started = time.perf_counter()
    while True:
        on, token = 0, ""
        while True:
            page: bc.ListWatchesResponse = await stub.ListWatches(
                bc.ListWatchesRequest(page_size=500, page_token=token))
            on += sum(1 for w in page.watches if w.fortnox_tenant_id)
            token = page.next_page_token
            if not token:
                break
        if on >= count:
            return time.perf_counter() - started
        assert time.perf_counter() - started < WAIT_S, f"only {on} of {count} on the feed"
        await asyncio.sleep(0.2)


class Consumer:
    """Streams of 100 tenants each, noting when each change arrived and how late it was."""

    def __init__(self, stub: pb_grpc.FortnoxServiceStub, tenants: list[str]) -> None:
        self.lags: list[float] = []
        self.last_at = 0.0
        self._calls = [stub.StreamBookChanges(bc.StreamBookChangesRequest(
            tenants=tenants[i:i + PER_STREAM])) for i in range(0, len(tenants), PER_STREAM)]
        self._tasks = [asyncio.create_task(self._read(call)) for call in self._calls]

    async def _read(self, call: grpc.aio.UnaryStreamCall) -> None:
        async for answer in call:
            now = datetime.now(UTC)
            self.last_at = time.perf_counter()
            self.lags.append((now - answer.change.occurred_at.ToDatetime(UTC)).total_seconds())

    async def wait_for(self, count: int) -> None:
        give_up = time.perf_counter() + WAIT_S
        while len(self.lags) < count:
            assert time.perf_counter() < give_up, f"only {len(self.lags)} of {count} came"
            await asyncio.sleep(0.01)

    def close(self) -> None:
        for call in self._calls:
            call.cancel()


async def run(sb: SandboxHandle, tenants: int, events: int, tmp: Path) -> dict[str, object]:
    companies = [c.id for c in sb.add_companies(tenants)]
    env = replica_env(sb.base_url, tmp / "feed.sqlite3", FORTNOX_BRIDGE_FEED_POLL_S="0.05",
                      FORTNOX_BRIDGE_FEED_LEASE_S="5")
    with serving(env, timeout_s=60) as served:
        async with grpc.aio.insecure_channel(served.address) as channel:
            stub = pb_grpc.FortnoxServiceStub(channel)
            began = time.perf_counter()
            names = await _connect_all(stub, companies)
            connected_s = time.perf_counter() - began
            added_s = await _all_on_feed(stub, len(names))
            consumer = Consumer(stub, names)
            await asyncio.sleep(0.5)  # the streams are open
            started = time.perf_counter()
            await asyncio.to_thread(sb.feed_burst, events, companies)
            await consumer.wait_for(events)
            burst_s = consumer.last_at - started
            burst_lags = list(consumer.lags)
            paced = max(10, events // 5)
            for _ in range(paced // 10):
                await asyncio.to_thread(sb.feed_burst, 10, companies)
                await asyncio.sleep(0.2)
            await consumer.wait_for(events + paced // 10 * 10)
            paced_lags = consumer.lags[len(burst_lags):]
            consumer.close()
        memory = _peak_rss_mib(served.process.pid)
    return {
        "tenants": tenants, "events": events,
        "connect_and_watch_s": round(connected_s, 1), "all_on_feed_after_s": round(added_s, 1),
        "burst_events_per_s": round(events / burst_s, 1),
        "burst_lag_p50_s": round(statistics.median(burst_lags), 3),
        "burst_lag_p99_s": round(_pct(burst_lags, 0.99), 3),
        "paced_events": len(paced_lags),
        "paced_lag_p50_s": round(statistics.median(paced_lags), 3),
        "paced_lag_p99_s": round(_pct(paced_lags, 0.99), 3),
        "holder_peak_rss_mib": round(memory, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10 if TINY else 1000)
    parser.add_argument("--events", type=int, default=50 if TINY else 1000)
    args = parser.parse_args()
    with (running_sandbox(rate_limit=1_000_000, rate_window_seconds=1) as sb,
          tempfile.TemporaryDirectory() as tmp):
        result = asyncio.run(run(sb, args.tenants, args.events, Path(tmp)))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
