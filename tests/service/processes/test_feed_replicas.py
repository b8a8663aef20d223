"""Three ``fortnox-bridge serve`` replicas and one sandbox process: exactly one replica holds
Fortnox's change feed; killed with SIGKILL (or hung with SIGSTOP) while the sandbox emits 1,000
events across 20 watched tenants (each its own Fortnox company), another takes the feed over
and every event reaches the consumer exactly once, as the sandbox's own log has it, duplicates
the sandbox injects included."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf.duration_pb2 import Duration

from spiris.skattbokslut.fortnox.v1 import book_changes_pb2 as bc
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import complete, log_in, start
from tests.harness.processes import ServeProcess, replicas
from tests.harness.sandbox import SandboxProcess, sandbox_process
from tests.harness.service import replica_env

TENANTS = 20
WAIT_S = 180.0
LEASE_S = 2.0


def holder(database: dict[str, Any]) -> tuple[int, int]:
    """The pid of the replica holding the feed, and its generation (the owner is
    ``host:pid:nonce``)."""
    query = "SELECT owner, generation FROM feed_holder"
    if "database_url" in database:
        with psycopg.connect(database["database_url"]) as pg:
            rows = pg.execute(query).fetchall()
    else:
        with sqlite3.connect(Path(database["db_path"])) as db:
            rows = db.execute(query).fetchall()
    if not rows or not rows[0][0]:
        return 0, 0
    owner, generation = rows[0]
    return int(str(owner).rsplit(":", 2)[1]), int(generation)


async def until(check: Any, what: str) -> Any:
    give_up = time.monotonic() + WAIT_S
    while not (found := check()):
        assert time.monotonic() < give_up, f"never: {what}"
        await asyncio.sleep(0.1)
    return found


def companies(sandbox: SandboxProcess) -> list[int]:
    return [int(t["id"]) for t in sandbox.control("GET", "/tenants")["tenants"]]


def logged(sandbox: SandboxProcess, company: int) -> list[int]:
    events = sandbox.control("GET", "/topics/events",
                             params={"topic": "vouchers", "tenant": company})["events"]
    return [int(e["number"]) for e in events]


@pytest.mark.parametrize("how", ["kill", "pause"])
async def test_a_holder_killed_or_hung_mid_burst_loses_and_repeats_nothing(
        database: dict[str, Any], how: str) -> None:
    """``kill``: SIGKILL. ``pause``: SIGSTOP until another replica has taken over, then
    SIGCONT: the woken holder's writes are refused (its generation is stale) and it drops its
    socket, so nothing it had read is stored twice."""
    with sandbox_process() as sandbox:
        sandbox.control("POST", "/tenants", {"count": TENANTS - len(companies(sandbox))})
        ids = companies(sandbox)
        assert len(ids) == TENANTS
        company_of = {f"t{n:02d}": company for n, company in enumerate(ids)}
        env = replica_env(sandbox.url, **database, FORTNOX_BRIDGE_FEED_LEASE_S=str(LEASE_S),
                          FORTNOX_BRIDGE_FEED_POLL_S="0.1")
        with replicas(env, 3) as three:
            by_pid = {p.process.pid: p for p in three}
            async with grpc.aio.insecure_channel(three[0].address) as channel:
                stub = pb_grpc.FortnoxServiceStub(channel)
                for tenant, company in company_of.items():
                    started = await start(stub, tenant)
                    await complete(stub, log_in(started.authorization_url, company=company))
                    await stub.WatchTenant(bc.WatchTenantRequest(
                        tenant=tenant, duration=Duration(seconds=86400)))
                give_up = time.monotonic() + WAIT_S
                for tenant in company_of:
                    while not await _on_feed(stub, tenant):
                        assert time.monotonic() < give_up, f"{tenant} never on the feed"
                        await asyncio.sleep(0.1)
            first_pid, first_generation = await until(lambda: holder(database)[0] and
                                                      holder(database), "a holder")
            killed = by_pid[first_pid]
            consumer = next(p for p in three if p is not killed)
            changes: list[bc.BookChange] = []
            follow = asyncio.create_task(_follow(consumer, list(company_of), changes))
            try:
                sandbox.add_fault("feed_duplicate", count=60)
                sandbox.control("POST", "/topics/burst", {"count": 500, "tenants": ids})
                await until(lambda: len(changes) >= 300, "some changes before the kill")
                os.kill(first_pid, signal.SIGKILL if how == "kill" else signal.SIGSTOP)
                killed_at = time.monotonic()
                sandbox.control("POST", "/topics/burst", {"count": 500, "tenants": ids})
                second_pid, second_generation = await until(
                    lambda: (h := holder(database))[0] not in (0, first_pid) and h,
                    "another holder")
                print(f"take-over {time.monotonic() - killed_at:.2f} s after the {how}"
                      f" (lease {LEASE_S} s)")
                assert second_generation > first_generation and second_pid in by_pid
                if how == "pause":
                    os.kill(first_pid, signal.SIGCONT)
                    sandbox.control("POST", "/topics/burst", {"count": 100, "tenants": ids})
                # One more voucher per company, last: once every tenant has its marker, all
                # before it has come (the stream is in cursor order).
                sandbox.control("POST", "/topics/burst", {"count": len(ids), "tenants": ids})
                expected = {t: logged(sandbox, c) for t, c in company_of.items()}
                assert sum(len(v) for v in {c: logged(sandbox, c) for c in ids}.values()
                           ) == 1000 + len(ids) + (100 if how == "pause" else 0)
                await until(lambda: _all_in(changes, expected), "every change")
            finally:
                follow.cancel()
    got: dict[str, list[int]] = {t: [] for t in company_of}
    for change in changes:
        got[change.tenant].append(change.voucher_number)
    assert got == expected


async def _on_feed(stub: pb_grpc.FortnoxServiceStub, tenant: str) -> bool:
    answer: bc.GetWatchResponse = await stub.GetWatch(bc.GetWatchRequest(tenant=tenant))
    return answer.watch.fortnox_tenant_id != 0


async def _follow(replica: ServeProcess, tenants: list[str],
                  into: list[bc.BookChange]) -> None:
    async with grpc.aio.insecure_channel(replica.address) as channel:
        call = pb_grpc.FortnoxServiceStub(channel).StreamBookChanges(
            bc.StreamBookChangesRequest(tenants=tenants))
        async for answer in call:
            into.append(answer.change)


def _all_in(changes: list[bc.BookChange], expected: dict[str, list[int]]) -> bool:
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.tenant] = counts.get(change.tenant, 0) + 1
    return all(counts.get(t, 0) >= len(numbers) for t, numbers in expected.items())
