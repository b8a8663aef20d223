"""500 vouchers, lost answers, and the service process killed with SIGKILL mid-export: after a
retry with the same request id exactly 500 vouchers exist in the sandbox."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import grpc
import pytest

from sandbox.testing import SandboxHandle, running_sandbox
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb
from tests.harness.connect import connect
from tests.harness.processes import serving
from tests.harness.sandbox import SMALL_SEED, fresh
from tests.harness.service import service_env
from tests.harness.vouchers import many, request

RATE, WINDOW_S = 50, 0.5  # Fortnox's 25 per 5 s, with the window shrunk so the test is short
COUNT = 500
TENANT = "sb-company"


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    """A small-seeded sandbox with a generous rate limit (the test sets its own)."""
    with running_sandbox(**SMALL_SEED) as sb:
        yield fresh(sb)


@contextmanager
def service(sb: SandboxHandle, db_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``fortnox-bridge serve`` wired to the sandbox; killed on exit if still alive."""
    env = service_env(sb.base_url, db_path) | {
        "FORTNOX_RATE_LIMIT_REQUESTS": str(RATE),
        "FORTNOX_RATE_LIMIT_WINDOW_S": str(WINDOW_S),
        "FORTNOX_HTTP_TIMEOUT_S": "2",
    }
    with serving(env) as served:
        yield served.process, served.address


async def _export(address: str, call: pb.ExportVouchersRequest) -> pb.ExportVouchersResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        response: pb.ExportVouchersResponse = await pb_grpc.FortnoxServiceStub(
            channel).ExportVouchers(call, timeout=120)
        return response


async def test_sigkill_mid_export_then_retry_leaves_exactly_one_each(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    db_path = tmp_path / "bridge.sqlite3"
    sandbox.set_rate_limit(RATE, WINDOW_S)
    company = sandbox.tenants[0]
    fortnox = company.id
    call = request(TENANT, many("yearend", date(2025, 12, 31), COUNT), str(uuid.uuid4()))

    with service(sandbox, db_path) as (process, address):
        await connect(address, TENANT, company)
        sandbox.add_fault("commit_drop", method="POST", path="/3/vouchers", probability=0.05)
        sandbox.add_fault("error", method="POST", path="/3/vouchers", status=503,
                          probability=0.03)
        export = asyncio.create_task(_export(address, call))
        deadline = time.monotonic() + 60
        while len(await asyncio.to_thread(sandbox.created_vouchers, fortnox)) < COUNT // 3:
            assert time.monotonic() < deadline and not export.done()
            await asyncio.sleep(0.05)
        process.kill()  # SIGKILL: no chance to record anything
        before = len(sandbox.created_vouchers(fortnox))
        assert COUNT // 3 <= before < COUNT
        killed = await asyncio.gather(export, return_exceptions=True)
        assert isinstance(killed[0], grpc.aio.AioRpcError)
        assert killed[0].code() == grpc.StatusCode.UNAVAILABLE

    with service(sandbox, db_path) as (_, address):
        response, codes = None, []
        for _ in range(30):  # lost answers thrice in a row, or the dead worker's lease
            try:
                response = await _export(address, call)
                break
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code())
                await asyncio.sleep(0.5)
        assert response is not None
        assert set(codes) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}

    created = sandbox.created_vouchers(fortnox)
    assert len(created) == COUNT
    outcomes = {r.outcome for r in response.results}
    assert outcomes == {v_pb.VoucherResult.OUTCOME_CREATED}
    assert sorted(r.voucher_number for r in response.results) == sorted(
        v["VoucherNumber"] for v in created)
