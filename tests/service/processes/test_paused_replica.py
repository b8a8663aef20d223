"""Two ``fortnox-bridge serve`` replicas on one database (SQLite and PostgreSQL): one claims a
voucher, meets a 429 and is paused (SIGSTOP: a long GC pause, a frozen VM) in its back-off
past its lease, the other takes the voucher over and books it; the first wakes (SIGCONT),
finds its claim fenced off, posts nothing and answers what the record says. The voucher is
booked once at the sandbox and the history says what both callers were told."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import date
from typing import Any

import grpc

from core.voucher_export.model import voucher_marker
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb
from tests.harness.connect import connect
from tests.harness.processes import replicas
from tests.harness.sandbox import SandboxProcess, sandbox_process
from tests.harness.service import replica_env
from tests.harness.vouchers import request, voucher

TENANT = "acme"
DAY = date(2025, 12, 31)


async def _export(address: str, call: pb.ExportVouchersRequest) -> pb.ExportVouchersResponse:
    """Sends ``call`` until it is answered (EXPORT_IN_PROGRESS while another replica's lease
    runs)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.FortnoxServiceStub(channel)
        for _ in range(240):
            try:
                response: pb.ExportVouchersResponse = await stub.ExportVouchers(call, timeout=120)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.ABORTED:
                    raise
                await asyncio.sleep(0.5)
                continue
            return response
    raise AssertionError("the export never settled")


async def _history(address: str, external_id: str) -> v_pb.VoucherExport:
    async with grpc.aio.insecure_channel(address) as channel:
        page = await pb_grpc.FortnoxServiceStub(channel).ListVoucherExports(
            pb.ListVoucherExportsRequest(tenant=TENANT, external_id=external_id), timeout=30)
    (record,) = page.exports
    return record


def _answers(sandbox: SandboxProcess, status: str) -> int:
    stats = sandbox.control("GET", "/stats")["requests"]
    return sum(int(by_status.get(status, 0)) for by_status in stats.values())


async def test_a_replica_paused_past_its_lease_posts_nothing_and_answers_the_record(
    database: dict[str, Any],
) -> None:
    with sandbox_process() as sandbox:
        # A lease of 2 x 2 s + 5 s; a back-off after a 429 of 3 to 6 s.
        env = replica_env(sandbox.url, **database, FORTNOX_HTTP_TIMEOUT_S="2",
                          FORTNOX_HTTP_RETRY_BASE_DELAY_S="6",
                          FORTNOX_HTTP_RETRY_MAX_DELAY_S="6")
        with replicas(env, 2) as (paused, other):
            await connect(paused.address, TENANT)
            call = request(TENANT, [voucher("paused-1", DAY, 12_300)])
            sandbox.add_fault("rate_limit", method="POST", path="/3/vouchers", count=1)
            first = asyncio.create_task(_export(paused.address, call))
            deadline = time.monotonic() + 60
            while not _answers(sandbox, "429"):  # its POST was refused: it backs off now
                assert time.monotonic() < deadline and not first.done()
                await asyncio.sleep(0.02)
            os.kill(paused.process.pid, signal.SIGSTOP)
            try:
                second = await _export(other.address, call)  # once the paused lease ends
            finally:
                os.kill(paused.process.pid, signal.SIGCONT)
            answered = await first
            recorded = await _history(other.address, "paused-1")
        marker = voucher_marker(TENANT, "paused-1")
        booked = [v for v in sandbox.created_vouchers() if marker in v["Comments"]]
    assert len(booked) == 1
    numbers = {answered.results[0].voucher_number, second.results[0].voucher_number,
               recorded.result.voucher_number}
    assert numbers == {booked[0]["VoucherNumber"]}
    assert {answered.results[0].outcome, second.results[0].outcome} == {
        v_pb.VoucherResult.OUTCOME_CREATED}
