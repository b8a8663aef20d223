"""ImportSie against a Fortnox that misbehaves the way real ones can: a file of another year
than the one asked for, and a connection dropped in the middle of a file."""

from __future__ import annotations

from collections import defaultdict

import grpc
import pytest

from sandbox.testing import SandboxHandle
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import import_history_pb2 as history_pb
from spiris.skattbokslut.fortnox.v1 import sie_import_pb2 as sie_pb
from tests.harness.connect import connect
from tests.harness.errors import error_info
from tests.service.test_import_sie import sandbox_export


async def test_a_file_of_another_year_fails_that_year_before_any_byte_of_it_is_sent(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    fortnox = sandbox.tenants[0]
    await connect(stub, "acme", fortnox)
    sandbox.add_fault("sie_any_year", path="/3/sie/")  # every file is the current year's
    previous = fortnox.financial_years[-2]["id"]
    chunks: list[pb.ImportSieResponse] = []

    async def run() -> None:
        request = pb.ImportSieRequest(
            tenant="acme", years=[sie_pb.YearSelector(financial_year_id=previous)])
        async for message in stub.ImportSie(request, timeout=60):
            chunks.extend([message] if message.WhichOneof("event") == "chunk" else [])

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run()
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(caught.value)
    assert info.reason == "SIE_YEAR_MISMATCH"
    assert info.metadata["financial_year_id"] == str(previous)
    assert chunks == []
    imports = (await stub.ListImports(pb.ListImportsRequest(tenant="acme"))).imports
    assert (imports[0].status, imports[0].error_reason) == (
        history_pb.Import.STATUS_FAILED, "SIE_YEAR_MISMATCH")


async def test_a_dropped_download_is_resumed_without_sending_a_byte_twice(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    fortnox = sandbox.tenants[0]
    await connect(stub, "acme", fortnox)
    sandbox.add_fault("slow_sie", path="/3/sie/", chunk_bytes=8192, chunk_delay_ms=0)
    sandbox.add_fault("drop", path="/3/sie/", count=2)  # the first two answers break
    received: dict[int, bytearray] = defaultdict(bytearray)
    messages = [m async for m in stub.ImportSie(pb.ImportSieRequest(tenant="acme"), timeout=60)]
    for message in messages:
        if message.WhichOneof("event") == "chunk":
            chunk = message.chunk
            assert chunk.offset == len(received[chunk.financial_year_id])  # no byte twice
            received[chunk.financial_year_id] += chunk.data
    assert messages[-1].WhichOneof("event") == "summary"
    for year in messages[-1].summary.years:
        expected = sandbox_export(sandbox, fortnox.id, year.financial_year_id)
        assert bytes(received[year.financial_year_id]) == expected
