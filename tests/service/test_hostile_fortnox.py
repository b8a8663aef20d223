"""ImportSie through a real gRPC channel against a Fortnox (the sandbox) whose answers are
hostile in size, shape and time: each reaches the caller as a reason of its own, and the import
is recorded as failed with it."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider

from sandbox.testing import SandboxHandle
from server.config import load_settings
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import import_history_pb2 as history_pb
from tests.harness.connect import connect
from tests.harness.errors import error_info
from tests.harness.service import service_env, serving_in_process

Import = history_pb.Import
MiB = 1024 * 1024
#: Generous: an import that must end does so long before this (its call limit is 5 s; the
#: drip below would take minutes to finish).
MUST_END_WITHIN_S = 60.0


async def _served(sandbox: SandboxHandle, tmp_path: Path, **settings: str
                  ) -> AsyncIterator[pb_grpc.FortnoxServiceStub]:
    env = service_env(sandbox.base_url, tmp_path / "bridge.sqlite3", **settings)
    async with serving_in_process(load_settings(env), TracerProvider()) as running, \
            grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield pb_grpc.FortnoxServiceStub(channel)


async def _failed_import(stub: pb_grpc.FortnoxServiceStub, code: grpc.StatusCode, reason: str,
                         deadline_s: float | None = 60) -> list[pb.ImportSieResponse]:
    """Runs an import of "acme" that must fail with ``code`` and ``reason`` (recorded in the
    history too); returns what the caller got before the error."""
    got: list[pb.ImportSieResponse] = []

    async def collect() -> None:
        async for message in stub.ImportSie(pb.ImportSieRequest(tenant="acme"),
                                            timeout=deadline_s):
            got.append(message)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect()
    assert (caught.value.code(), error_info(caught.value).reason) == (code, reason), (
        caught.value.details())
    (record,) = (await stub.ListImports(pb.ListImportsRequest(tenant="acme"))).imports
    assert (record.status, record.error_reason) == (Import.STATUS_FAILED, reason)
    return got


async def test_a_null_in_the_financial_years_is_a_malformed_answer(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    await connect(stub, "acme", sandbox.tenants[0])
    sandbox.add_fault("answer", path="/3/financialyears", body=json.dumps({
        "MetaInformation": {"@TotalResources": 1, "@TotalPages": 1, "@CurrentPage": 1},
        "FinancialYears": [None]}))
    await _failed_import(stub, grpc.StatusCode.UNAVAILABLE, "FORTNOX_ANSWER_MALFORMED")


async def test_a_gzip_bomb_on_the_financial_years_is_refused_as_too_large(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    await connect(stub, "acme", sandbox.tenants[0])
    sandbox.add_fault("gzip_bomb", path="/3/financialyears", bomb_bytes=64 * MiB)
    await _failed_import(stub, grpc.StatusCode.RESOURCE_EXHAUSTED, "FORTNOX_ANSWER_TOO_LARGE")


async def test_a_dripping_fortnox_ends_a_call_without_a_deadline(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    async for stub in _served(sandbox, tmp_path, FORTNOX_CALL_TIMEOUT_S="5",
                              FORTNOX_HTTP_TIMEOUT_S="10"):
        await connect(stub, "acme", sandbox.tenants[0])
        sandbox.add_fault("drip", path="/3/financialyears", chunk_bytes=1,
                          chunk_delay_ms=300)
        await asyncio.wait_for(
            _failed_import(stub, grpc.StatusCode.UNAVAILABLE, "FORTNOX_UNAVAILABLE",
                           deadline_s=None),
            MUST_END_WITHIN_S)


async def test_a_sie_file_over_the_download_bound_fails_with_its_own_reason(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    async for stub in _served(sandbox, tmp_path, FORTNOX_MAX_DOWNLOAD_BYTES="4096"):
        await connect(stub, "acme", sandbox.tenants[0])
        await _failed_import(stub, grpc.StatusCode.RESOURCE_EXHAUSTED, "SIE_TOO_LARGE")


_SIE_HEAD = "#FLAGGA 0\r\n#SIETYP 4\r\n#RAR 0 20260101 20261231\r\n"


@pytest.mark.parametrize("content", [
    pytest.param(random.Random(7).randbytes(20_000), id="random-bytes"),
    pytest.param(_SIE_HEAD.encode("utf-16"), id="utf-16"),
    pytest.param(_SIE_HEAD.encode("utf-16-le"), id="utf-16-without-bom"),
    pytest.param(b"<html><body>Fortnox is down for maintenance</body></html>", id="html"),
    pytest.param(b"", id="empty"),
    pytest.param(b"\x00" * 5000, id="nul-bytes"),
    pytest.param(b"#KONTO 1910 Kassa\r\n#RAR 0 20260101 20261231\r\n", id="no-flagga-or-sietyp"),
])
async def test_a_file_that_is_not_sie_fails_its_year_whatever_the_policy(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle, content: bytes
) -> None:
    """Not ``fail_on_error``: before, such a file passed as a year of 0 vouchers."""
    await connect(stub, "acme", sandbox.tenants[0])
    sandbox.add_fault("answer", path="/3/sie", content_type="application/octet-stream",
                      body_base64=base64.b64encode(content).decode())
    got = await _failed_import(stub, grpc.StatusCode.FAILED_PRECONDITION, "SIE_NOT_SIE")
    assert not [m for m in got if m.WhichOneof("event") == "chunk"]  # no byte of it
