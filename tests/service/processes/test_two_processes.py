"""Two ``fortnox-bridge serve`` processes on one database (each backend of ``DATABASES``), one
sandbox process: whatever must happen once happens once, whichever process a call reaches."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any, TypeAlias

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb
from tests.harness.connect import connect
from tests.harness.errors import error_info
from tests.harness.processes import ServeProcess, replicas
from tests.harness.sandbox import SandboxProcess, sandbox_process
from tests.harness.service import replica_env
from tests.harness.vouchers import many, request

TENANT = "acme"
DAY = date(2025, 12, 31)
HTTP_TIMEOUT_S = 4  # the export claim's lease is 2 * timeout + 5 s = 13 s
Outcome: TypeAlias = pb.ExportVouchersResponse | grpc.aio.AioRpcError


@pytest.fixture
def sandbox() -> Iterator[SandboxProcess]:
    with sandbox_process("--access-token-seconds", "310") as sb:
        yield sb


@pytest.fixture
async def two(
    sandbox: SandboxProcess, database: dict[str, Any]
) -> AsyncIterator[list[ServeProcess]]:
    env = replica_env(sandbox.url, **database, FORTNOX_HTTP_TIMEOUT_S=str(HTTP_TIMEOUT_S))
    with replicas(env, 2) as processes:
        await connect(processes[0].address, TENANT)
        yield processes


async def _export(address: str, call: pb.ExportVouchersRequest) -> Outcome:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            response: pb.ExportVouchersResponse = await pb_grpc.FortnoxServiceStub(
                channel).ExportVouchers(call, timeout=60)
        except grpc.aio.AioRpcError as error:
            return error
        return response


def _in_progress(outcome: Outcome) -> float:
    """The retry delay of an EXPORT_IN_PROGRESS answer; fails on any other error."""
    assert isinstance(outcome, grpc.aio.AioRpcError), outcome
    assert outcome.code() == grpc.StatusCode.ABORTED, outcome.details()
    assert error_info(outcome).reason == "EXPORT_IN_PROGRESS"
    status = rpc_status.from_call(outcome)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in status.details if d.Is(retry.DESCRIPTOR))
    return float(retry.retry_delay.ToNanoseconds()) / 1e9


def _booked(sandbox: SandboxProcess) -> Counter[str]:
    """How often each external id was booked (the voucher's comments end with it)."""
    return Counter(v["Comments"].split()[-1] for v in sandbox.created_vouchers())


async def _settle(address: str, call: pb.ExportVouchersRequest) -> pb.ExportVouchersResponse:
    """Sends ``call`` until it is answered (a claim still in flight, a lost answer thrice)."""
    for _ in range(60):
        outcome = await _export(address, call)
        if isinstance(outcome, pb.ExportVouchersResponse):
            return outcome
        assert outcome.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE)
        await asyncio.sleep(0.5)
    raise AssertionError("the export never settled")


def _numbers(response: pb.ExportVouchersResponse) -> dict[str, int]:
    return {r.external_id: r.voucher_number for r in response.results}


async def test_the_same_vouchers_sent_to_both_processes_are_booked_once(
    sandbox: SandboxProcess, two: list[ServeProcess]
) -> None:
    sandbox.add_fault("latency", method="POST", path="/3/vouchers", latency_ms=300)
    sandbox.add_fault("commit_drop", method="POST", path="/3/vouchers", probability=0.1)
    a, b = (p.address for p in two)
    answered: list[tuple[pb.ExportVouchersRequest, Outcome]] = []
    calls = []
    for round_ in range(6):
        vouchers = many(f"r{round_}", DAY, 10)
        same = request(TENANT, vouchers)
        if round_ % 3 == 0:  # the same request at the same moment to both
            pair = [same, same]
            outcomes = list(await asyncio.gather(_export(a, same), _export(b, same)))
        elif round_ % 3 == 1:  # different request ids, the same external ids, at once
            pair = [same, request(TENANT, vouchers)]
            outcomes = list(await asyncio.gather(_export(a, pair[0]), _export(b, pair[1])))
        else:  # a retry to the other process 0.5 s later, while Fortnox is slow
            pair = [same, same]
            first = asyncio.create_task(_export(a, same))
            await asyncio.sleep(0.5)
            outcomes = [*await asyncio.gather(_export(b, same), first)][::-1]
        answered += zip(pair, outcomes, strict=True)
        calls.append(same)
    # Every caller answered with vouchers (not told "in progress") saw the final numbers.
    final: dict[str, int] = {}
    for call in calls:
        final |= _numbers(await _settle(a, call))
    in_progress = 0
    for call, outcome in answered:
        if isinstance(outcome, pb.ExportVouchersResponse):
            assert _numbers(outcome) == {v.external_id: final[v.external_id]
                                         for v in call.vouchers}
        else:
            assert _in_progress(outcome) > 0
            in_progress += 1
    # New request ids for the same external ids, to both processes: nothing new is booked.
    again = await asyncio.gather(*(_export(address, request(TENANT, list(call.vouchers)))
                                   for call in calls for address in (a, b)))
    for outcome in again:
        assert isinstance(outcome, pb.ExportVouchersResponse), outcome
        assert {r.outcome for r in outcome.results} == {
            v_pb.VoucherResult.OUTCOME_ALREADY_EXPORTED}
        assert all(final[ext] == number for ext, number in _numbers(outcome).items())
    booked = _booked(sandbox)
    assert len(final) == 60 and set(booked) == set(final)
    assert set(booked.values()) == {1}, [k for k, n in booked.items() if n > 1]
    print(f"60 external ids, {len(answered)} calls, {in_progress} told EXPORT_IN_PROGRESS,"
          f" every id booked once")


async def test_a_claim_of_a_killed_process_is_finished_by_the_other_after_its_lease(
    sandbox: SandboxProcess, two: list[ServeProcess]
) -> None:
    sandbox.add_fault("latency", method="POST", path="/3/vouchers", latency_ms=3000)
    a, b = two
    call = request(TENANT, many("killed", DAY, 3))
    export = asyncio.create_task(_export(a.address, call))
    await asyncio.sleep(2.0)  # a's POSTs are on their way: its claims are in the database
    a.process.kill()  # SIGKILL: a never records an answer
    sandbox.clear_faults()
    killed = await export
    assert isinstance(killed, grpc.aio.AioRpcError)
    killed_at = time.monotonic()
    retry_after = _in_progress(await _export(b.address, call))  # the lease still runs
    assert 0 < retry_after <= 2 * HTTP_TIMEOUT_S + 5
    response = await _settle(b.address, call)
    waited = time.monotonic() - killed_at
    assert waited >= retry_after - 1
    assert {r.outcome for r in response.results} == {v_pb.VoucherResult.OUTCOME_CREATED}
    booked = _booked(sandbox)
    assert booked == Counter({v.external_id: 1 for v in call.vouchers})
    numbers = {v["Comments"].split()[-1]: v["VoucherNumber"] for v in sandbox.created_vouchers()}
    assert _numbers(response) == numbers
    print(f"killed mid-POST; the other process finished after {waited:.1f} s"
          f" (lease left {retry_after:.1f} s), 3 vouchers booked once each")


async def test_a_refresh_needed_by_fifty_calls_on_two_processes_happens_once(
    sandbox: SandboxProcess, two: list[ServeProcess]
) -> None:
    # Access tokens live 310 s and are refreshed 300 s before they expire: 10 s after the
    # connect every call needs a new one.
    due_at = time.monotonic() + 10.5
    before = sandbox.refreshes()
    file_export = request(TENANT, many("file", DAY, 1),
                          target=pb.ExportVouchersRequest.TARGET_SIE_4I_FILE)
    await asyncio.sleep(due_at - time.monotonic())
    outcomes = await asyncio.gather(*(
        _export(two[n % 2].address, file_export) for n in range(50)))
    for outcome in outcomes:  # each reads the company from Fortnox with a fresh token
        assert isinstance(outcome, pb.ExportVouchersResponse), outcome
        assert b"#FNAMN" in outcome.sie_file
    assert sandbox.refreshes() - before == 1
