"""Three ``fortnox-bridge serve`` replicas on one PostgreSQL database, one sandbox process:
together they keep within one rate limit while one tenant imports and exports through all
three, and book each voucher once."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import date

import grpc

from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import connect
from tests.harness.processes import replicas
from tests.harness.sandbox import SandboxProcess, sandbox_process
from tests.harness.service import replica_env
from tests.harness.vouchers import many, request

TENANT = "acme"
DAY = date(2025, 12, 31)
LIMIT = 8  # per second, at the sandbox and in every replica


async def _export(address: str, call: pb.ExportVouchersRequest) -> pb.ExportVouchersResponse:
    """Sends ``call`` until it is answered (another replica's claim may still be in flight)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.FortnoxServiceStub(channel)
        for _ in range(60):
            try:
                response: pb.ExportVouchersResponse = await stub.ExportVouchers(call, timeout=60)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.ABORTED:  # only EXPORT_IN_PROGRESS waits
                    raise
                await asyncio.sleep(0.5)
                continue
            return response
    raise AssertionError("the export never settled")


async def _import(address: str) -> pb.ImportSieResponse:
    """An ImportSie of the tenant's default years; its closing summary."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.FortnoxServiceStub(channel)
        events = [event async for event in stub.ImportSie(
            pb.ImportSieRequest(tenant=TENANT, omit_raw_chunks=True), timeout=120)]
    summary: pb.ImportSieResponse = events[-1]
    assert summary.WhichOneof("event") == "summary", summary
    return summary


def _answers(sandbox: SandboxProcess, status: str) -> int:
    stats = sandbox.control("GET", "/stats")["requests"]
    return sum(int(by_status.get(status, 0)) for by_status in stats.values())


async def test_three_replicas_importing_and_exporting_keep_one_rate_limit_and_book_once(
    postgres_url: str,
) -> None:
    with sandbox_process("--rate-limit", str(LIMIT), "--rate-window", "1") as sandbox:
        env = replica_env(sandbox.url, database_url=postgres_url,
                          FORTNOX_RATE_LIMIT_REQUESTS=str(LIMIT),
                          FORTNOX_RATE_LIMIT_WINDOW_S="1")
        with replicas(env, 3) as three:
            await connect(three[0].address, TENANT)
            await asyncio.sleep(1.0)  # the connect's lookup, limited under the tenant, ages out
            own = [request(TENANT, many(f"r{i}", DAY, 6)) for i in range(3)]
            shared = request(TENANT, many("shared", DAY, 6))
            calls = [(p.address, call) for p, call in zip(three, own, strict=True)]
            calls += [(p.address, shared) for p in three]  # one request sent to all three
            exports = asyncio.gather(*(_export(a, c) for a, c in calls))
            imports = asyncio.gather(*(_import(p.address) for p in three))
            answers, summaries = await asyncio.gather(exports, imports)
            for process in three:
                process.process.send_signal(signal.SIGTERM)
            assert [p.process.wait(timeout=20) for p in three] == [0, 0, 0]
        booked = Counter(v["Comments"].split()[-1] for v in sandbox.created_vouchers())
        sent = _answers(sandbox, "200") + _answers(sandbox, "201")
        too_many = _answers(sandbox, "429")
    assert too_many == 0 and sent > 3 * LIMIT  # several windows' worth, none refused
    assert [len(s.summary.years) for s in summaries] == [3, 3, 3]  # every import completed
    assert len(booked) == 24 and set(booked.values()) == {1}
    numbers = [{r.external_id: r.voucher_number for r in a.results} for a in answers[3:]]
    assert numbers[0] == numbers[1] == numbers[2] and all(numbers[0].values())
