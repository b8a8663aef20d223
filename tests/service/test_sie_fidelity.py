"""ImportSie against a Fortnox that misbehaves the way real ones can: a file of another year
than the one asked for, a file of another company than the one connected, and a connection
dropped in the middle of a file."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc
import pytest

from adapters.fortnox import FortnoxAdapter
from adapters.sie_parsing import ProcessParsers
from adapters.sqlite.connections import SqliteTokenStore
from adapters.sqlite.imports import SqliteImportHistory
from core.clock import utc_now
from core.connections import Connection, ConnectionRecords, require_found
from core.errors import SieInvalid
from core.imports import ImportStatus
from core.sie_import import ImportSummary, RawChunk, SieImport, SieImportRequest
from sandbox.testing import SandboxHandle
from server.config import Settings
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


class ConnectedAs:
    """The connection records of a tenant whose company was recorded with ``number`` when it
    connected: a fake of the port, so that Fortnox's file can name another company."""

    def __init__(self, connections: ConnectionRecords, number: str) -> None:
        self._connections = connections
        self._number = number

    async def connection(self, tenant: str) -> Connection:
        found = require_found(await self._connections.connection(tenant))
        return replace(found, organisation_number=self._number)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connections, name)


async def collect(events: AsyncIterator[object], into: list[object]) -> None:
    """Keeps every event until the stream ends or raises."""
    async for event in events:
        into.append(event)


@pytest.mark.parametrize("recorded", ["559999-9999", "16{digits}", "{digits}"])
async def test_a_file_of_another_company_fails_its_year_before_any_byte_of_it_is_sent(
    sandbox: SandboxHandle, settings: Settings, recorded: str
) -> None:
    fortnox = sandbox.tenants[0]  # its file says #ORGNR nnnnnn-nnnn
    number = recorded.format(digits=fortnox.organisation_number.replace("-", ""))
    store = SqliteTokenStore(settings.db_path, settings.token_key)
    history = SqliteImportHistory(settings.db_path, utc_now)
    parsers = ProcessParsers(1)
    events: list[object] = []
    try:
        async with FortnoxAdapter(settings, store) as adapter:
            start = await adapter.connections.begin_connect("acme", sandbox.redirect_uri)
            await adapter.connections.complete_connect(start.state, sandbox.consent_code(
                fortnox.id, sandbox.redirect_uri, state=start.state))
            connections = ConnectedAs(store, number)
            imports = SieImport(adapter.api, connections, history, parsers, utc_now)
            request = SieImportRequest(tenant="acme")
            if number != "559999-9999":  # the same company, however its number is written
                events = [event async for event in imports.run(request)]
                assert isinstance(events[-1], ImportSummary)
            else:
                with pytest.raises(SieInvalid) as refused:
                    await collect(imports.run(request), events)
                assert (refused.value.reason, refused.value.metadata["expected"],
                        refused.value.metadata["received"]) == (
                    "SIE_COMPANY_MISMATCH", "559999-9999", fortnox.organisation_number)
                assert not [event for event in events if isinstance(event, RawChunk)]
                (failed,) = (await history.list_imports("acme", None, 10, "")).imports
                assert (failed.status, failed.error_reason) == (
                    ImportStatus.FAILED, "SIE_COMPANY_MISMATCH")
            await imports.aclose()
    finally:
        await parsers.aclose()
        await history.aclose()
        await store.aclose()


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
