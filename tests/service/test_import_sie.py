"""ImportSie through a real gRPC channel against the sandbox: bytes, counts, history, failures."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sqlite3
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.fortnox import FortnoxAdapter
from adapters.sie_parsing import ProcessParsers
from adapters.sqlite import open_database
from adapters.sqlite.connections import SqliteTokenStore
from adapters.sqlite.imports import SqliteImportHistory
from core.clock import utc_now
from core.sie_import import ImportSummary, SieImport, SieImportRequest
from core.sie_parse import ParseOptions, RecordBatch, YearParse
from sandbox.testing import SandboxHandle
from server.app import RunningServer
from server.config import Settings, load_settings
from server.rpc_sie import _records
from sie import read_summary
from spiris.skattbokslut.fortnox.v1 import connection_pb2
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import import_history_pb2 as history_pb
from spiris.skattbokslut.fortnox.v1 import sie_import_pb2 as sie_pb
from tests.harness.connect import connect
from tests.harness.errors import error_info
from tests.harness.processes import parser_pids
from tests.harness.service import service_env, serving_in_process

Import = history_pb.Import
Changes = sie_pb.YearChanges


def sandbox_export(sb: SandboxHandle, tenant_id: int, year_id: int) -> bytes:
    """The year's SIE file straight from the sandbox, as a Fortnox client would fetch it."""
    token = sb.tokens(tenant_id)["access_token"]
    response = httpx.get(f"{sb.api_url}/sie/4", params={"financialyear": year_id},
                         headers={"Authorization": f"Bearer {token}"}, timeout=60)
    response.raise_for_status()
    return response.content


async def run_import(
    stub: pb_grpc.FortnoxServiceStub, request: pb.ImportSieRequest, deadline_s: float = 60
) -> list[pb.ImportSieResponse]:
    return [message async for message in stub.ImportSie(request, timeout=deadline_s)]


async def test_three_years_arrive_byte_for_byte_with_counts_and_history(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    fortnox = sandbox.tenants[0]
    await connect(stub, "acme", fortnox)
    messages = await run_import(stub, pb.ImportSieRequest(tenant="acme"))

    assert messages[0].WhichOneof("event") == "progress"
    assert messages[-1].WhichOneof("event") == "summary"
    assert sum(m.WhichOneof("event") == "summary" for m in messages) == 1
    received: dict[int, bytearray] = defaultdict(bytearray)
    for message in messages:
        if message.WhichOneof("event") == "chunk":
            chunk = message.chunk
            assert chunk.offset == len(received[chunk.financial_year_id])
            assert len(chunk.data) <= 1 << 20
            received[chunk.financial_year_id] += chunk.data
    years = [y["id"] for y in fortnox.financial_years]
    summary = messages[-1].summary
    assert [y.financial_year_id for y in summary.years] == years  # default: current + 2 before
    for year in summary.years:
        expected = sandbox_export(sandbox, fortnox.id, year.financial_year_id)
        assert bytes(received[year.financial_year_id]) == expected
        read = read_summary(expected)
        assert year.sha256 == hashlib.sha256(expected).hexdigest()
        assert (year.byte_size, year.voucher_count, year.transaction_count,
                year.account_count) == (len(expected), read.vouchers, read.transactions,
                                        read.accounts)
        assert year.encoding == read.encoding
        assert year.error_count == 0
        assert year.controls_passed
        assert year.changes.kind == Changes.KIND_FIRST_IMPORT
    assert summary.total_bytes == sum(len(b) for b in received.values())
    assert not summary.cross_year_findings

    record = (await stub.GetImport(pb.GetImportRequest(
        tenant="acme", import_id=summary.import_id))).import_record
    assert record.status == Import.STATUS_SUCCEEDED
    assert [y.sha256 for y in record.years] == [y.sha256 for y in summary.years]
    assert record.kind == Import.KIND_SIE
    connection = (await stub.GetConnection(pb.GetConnectionRequest(tenant="acme"))).connection
    assert connection.last_sie_import_at.seconds >= record.started_at.seconds
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetImport(pb.GetImportRequest(tenant="intruder",
                                                 import_id=summary.import_id))
    assert error_info(caught.value).reason == "IMPORT_NOT_FOUND"


async def connected_to_one_year(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> pb.ImportSieRequest:
    """Connects "acme" to the first company; a request for its newest year, no raw bytes."""
    fortnox = sandbox.tenants[0]
    await connect(stub, "acme", fortnox)
    return pb.ImportSieRequest(
        tenant="acme", omit_raw_chunks=True,
        years=[sie_pb.YearSelector(financial_year_id=fortnox.financial_years[-1]["id"])],
    )


def amend_first_voucher(sandbox: SandboxHandle) -> None:
    """Changes the text of the first voucher of that year, in Fortnox's books."""
    fortnox = sandbox.tenants[0]
    year_id = fortnox.financial_years[-1]["id"]
    voucher = sandbox.all_vouchers(fortnox.id, year_id)[0]
    sandbox.amend_voucher(fortnox.id, year_id, voucher["VoucherSeries"],
                          voucher["VoucherNumber"], description="Rättad text")


async def test_reimport_reports_unchanged_then_the_amended_voucher(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    request = await connected_to_one_year(stub, sandbox)
    first = (await run_import(stub, request))[-1].summary
    again = (await run_import(stub, request))[-1].summary
    assert again.years[0].changes.kind == Changes.KIND_UNCHANGED
    assert again.years[0].changes.previous_import_id == first.import_id
    assert not any(m.WhichOneof("event") == "chunk" for m in await run_import(stub, request))

    amend_first_voucher(sandbox)
    changed = (await run_import(stub, request))[-1].summary.years[0].changes
    assert changed.kind == Changes.KIND_CHANGED
    assert (changed.vouchers_added, changed.vouchers_changed, changed.vouchers_removed) == (
        0, 1, 0)


async def test_changes_against_an_import_without_fingerprints_are_not_known(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle, settings: Settings
) -> None:
    request = await connected_to_one_year(stub, sandbox)
    first = (await run_import(stub, request))[-1].summary
    with sqlite3.connect(settings.db_path) as db:  # as m004 leaves an older release's imports
        db.execute("DELETE FROM voucher_digest_batches")
    amend_first_voucher(sandbox)
    changes = (await run_import(stub, request))[-1].summary.years[0].changes
    assert changes.kind == Changes.KIND_UNSPECIFIED
    assert changes.previous_import_id == first.import_id
    again = (await run_import(stub, request))[-1].summary.years[0].changes
    assert again.kind == Changes.KIND_UNCHANGED  # fingerprints of the new kind are kept


async def test_parsed_records_arrive_when_asked(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    fortnox = sandbox.tenants[0]
    year_id = fortnox.financial_years[0]["id"]
    await connect(stub, "acme", fortnox)
    messages = await run_import(stub, pb.ImportSieRequest(
        tenant="acme", years=[sie_pb.YearSelector(financial_year_id=year_id)],
        include_records=True, omit_raw_chunks=True,
    ))
    batches = [m.records for m in messages if m.WhichOneof("event") == "records"]
    vouchers = [v for b in batches for v in b.vouchers]
    year = messages[-1].summary.years[0]
    assert len(vouchers) == year.voucher_count > 0
    assert sum(len(b.accounts) for b in batches) == year.account_count
    for voucher in vouchers:
        assert sum(t.amount_minor for t in voucher.transactions) == 0


async def test_records_reach_the_caller_byte_for_byte_as_protobuf_writes_them(
    stub: pb_grpc.FortnoxServiceStub, service: RunningServer, sandbox: SandboxHandle
) -> None:
    """The record batches the parser processes wrote pass the service untouched: on the wire
    (read undecoded), each is what protobuf writes for the same batch parsed here, document
    counts and all, and every other answer is still a message of its own."""
    fortnox = sandbox.tenants[0]
    year_id = fortnox.financial_years[0]["id"]
    await connect(stub, "acme", fortnox)
    request = pb.ImportSieRequest(tenant="acme", include_records=True,
                                  years=[sie_pb.YearSelector(financial_year_id=year_id)])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        call = channel.unary_stream(
            f"/{pb.DESCRIPTOR.services_by_name['FortnoxService'].full_name}/ImportSie",
            request_serializer=pb.ImportSieRequest.SerializeToString)
        answers: list[bytes] = [answer async for answer in call(request, timeout=60)]
    kinds = [pb.ImportSieResponse.FromString(a).WhichOneof("event") for a in answers]
    sent = [a for a, kind in zip(answers, kinds, strict=True) if kind == "records"]
    assert kinds[-1] == "summary" and "chunk" in kinds
    counts = Counter((c.voucher.series, int(c.voucher.number))
                     for c in sandbox.state.books[fortnox.id].voucher_files
                     if c.voucher.year_id == year_id)
    assert any(counts.values())  # some voucher has documents
    parse = YearParse(ParseOptions(year_id, include_records=True, document_counts=counts))
    data = sandbox_export(sandbox, fortnox.id, year_id)
    parsed = [parse.feed(data[at:at + 8192]) for at in range(0, len(data), 8192)]
    parsed.append(parse.close()[0])
    expected = [pb.ImportSieResponse(records=_records(e)).SerializeToString()
                for p in parsed for e in p.events if isinstance(e, RecordBatch)]
    assert sent == expected and sent


async def test_cancelling_mid_stream_stops_the_download_and_records_cancelled(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    fortnox = sandbox.tenants[0]
    await connect(stub, "acme", fortnox)
    sandbox.add_fault("slow_sie", chunk_bytes=1024, chunk_delay_ms=50)
    call = stub.ImportSie(pb.ImportSieRequest(tenant="acme"))
    async for message in call:
        if message.WhichOneof("event") == "chunk":
            break
    call.cancel()
    for _ in range(100):
        imports = (await stub.ListImports(pb.ListImportsRequest(tenant="acme"))).imports
        if imports[0].status != Import.STATUS_RUNNING:
            break
        await asyncio.sleep(0.05)
    assert imports[0].status == Import.STATUS_CANCELLED
    assert imports[0].finished_at.seconds > 0


async def test_tokens_expiring_mid_import_are_refreshed_and_the_import_completes(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    fortnox = sandbox.tenants[0]
    await connect(stub, "acme", fortnox)
    before = (await stub.GetConnection(pb.GetConnectionRequest(tenant="acme"))).connection
    summaries = 0
    final = None
    request = pb.ImportSieRequest(tenant="acme", omit_raw_chunks=True)
    async for message in stub.ImportSie(request):
        if message.WhichOneof("event") == "year_summary":
            summaries += 1
            if summaries == 1:
                sandbox.advance_clock(2 * 3600)  # every access token issued so far is dead
        final = message
    assert final is not None
    assert final.WhichOneof("event") == "summary"
    assert len(final.summary.years) == 3
    after = (await stub.GetConnection(pb.GetConnectionRequest(tenant="acme"))).connection
    assert after.last_refreshed_at.ToDatetime() > before.last_refreshed_at.ToDatetime()
    assert sandbox.stats()["tokens"][str(fortnox.id)]["refreshes"] >= 1


async def test_a_dead_refresh_token_requires_reconnect_and_the_history_says_why(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    fortnox = sandbox.tenants[0]
    await connect(stub, "acme", fortnox)
    sandbox.invalidate_refresh_tokens(fortnox.id)
    sandbox.advance_clock(2 * 3600)  # the access token expires: a refresh is needed
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run_import(stub, pb.ImportSieRequest(tenant="acme"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(caught.value).reason == "RECONNECT_REQUIRED"
    connection = (await stub.GetConnection(pb.GetConnectionRequest(tenant="acme"))).connection
    assert connection.state == connection_pb2.Connection.STATE_RECONNECT_REQUIRED
    assert connection.state_reason
    imports = (await stub.ListImports(pb.ListImportsRequest(tenant="acme"))).imports
    assert (imports[0].status, imports[0].error_reason) == (
        Import.STATUS_FAILED, "RECONNECT_REQUIRED")


async def test_a_connection_dropped_mid_file_fails_the_import_cleanly(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    fortnox = sandbox.tenants[0]
    await connect(stub, "acme", fortnox)
    sandbox.add_fault("drop", path="/3/sie/")  # every SIE download breaks, retries too
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run_import(stub, pb.ImportSieRequest(tenant="acme"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(caught.value).reason == "FORTNOX_UNAVAILABLE"
    imports = (await stub.ListImports(pb.ListImportsRequest(tenant="acme"))).imports
    assert (imports[0].status, imports[0].error_reason) == (
        Import.STATUS_FAILED, "FORTNOX_UNAVAILABLE")


async def import_killing_the_parsers(
    stub: pb_grpc.FortnoxServiceStub, request: pb.ImportSieRequest
) -> None:
    """Runs an import and kills the SIE parser processes once the first bytes arrive."""
    async for message in stub.ImportSie(request):
        if message.WhichOneof("event") == "chunk":
            for pid in parser_pids():
                os.kill(pid, signal.SIGKILL)


async def test_a_parser_process_that_dies_fails_the_import_and_the_next_one_succeeds(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    await connect(stub, "acme", sandbox.tenants[0])
    sandbox.add_fault("slow_sie", chunk_bytes=1024, chunk_delay_ms=20)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await import_killing_the_parsers(stub, pb.ImportSieRequest(tenant="acme"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(caught.value).reason == "SIE_PARSER_FAILED"
    (failed,) = (await stub.ListImports(pb.ListImportsRequest(tenant="acme"))).imports
    assert (failed.status, failed.error_reason) == (Import.STATUS_FAILED, "SIE_PARSER_FAILED")
    sandbox.clear_faults()
    final = (await run_import(stub, pb.ImportSieRequest(tenant="acme", omit_raw_chunks=True)))[-1]
    assert final.WhichOneof("event") == "summary"
    assert len(final.summary.years) == 3


async def test_missing_scope_is_reported_as_such(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    await connect(stub, "acme", sandbox.tenants[0], scopes=("companyinformation",))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run_import(stub, pb.ImportSieRequest(tenant="acme"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "FORTNOX_SCOPE_MISSING"


async def test_unknown_year_and_unconnected_tenant_are_refused_up_front(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run_import(stub, pb.ImportSieRequest(tenant="nobody"))
    assert error_info(caught.value).reason == "CONNECTION_NOT_FOUND"
    await connect(stub, "acme", sandbox.tenants[0])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run_import(stub, pb.ImportSieRequest(
            tenant="acme", years=[sie_pb.YearSelector(financial_year_id=999)]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).reason == "FINANCIAL_YEAR_NOT_FOUND"


async def test_the_import_is_traced_with_fortnox_calls_and_parsing_as_children(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle, spans: InMemorySpanExporter
) -> None:
    await connect(stub, "acme", sandbox.tenants[0])
    spans.clear()
    await run_import(stub, pb.ImportSieRequest(tenant="acme", omit_raw_chunks=True))
    finished = spans.get_finished_spans()
    rpc = next(s for s in finished if s.name.endswith("/ImportSie"))
    assert rpc.attributes is not None
    assert rpc.attributes["skattbokslut.tenant"] == "acme"
    assert len(rpc.attributes["fortnox.financial_years"]) == 3  # type: ignore[arg-type]
    assert rpc.attributes["import.vouchers"] > 0  # type: ignore[operator]
    assert any("received" in e.name for e in rpc.events)
    in_trace = [s for s in finished if s.context.trace_id == rpc.context.trace_id]
    years = [s for s in in_trace if s.name == "sie.import_year"]
    assert len(years) == 3
    assert all(s.parent is not None and s.parent.span_id == rpc.context.span_id for s in years)
    calls = [s for s in in_trace if s.kind.name == "CLIENT"]
    assert any("/3/sie/" in s.name for s in calls), [s.name for s in calls]
    # Our tenant, under a name no one reads as Fortnox's TenantId.
    assert all(s.attributes and s.attributes["skattbokslut.tenant"] == "acme" for s in calls)
    assert not any(s.attributes and "fortnox.tenant" in s.attributes for s in calls)


async def test_many_tenants_importing_at_once_all_succeed(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    tenants = [f"t{n}" for n in range(16)]
    for n, tenant in enumerate(tenants):
        await connect(stub, tenant, sandbox.tenants[n % 3])
    results = await asyncio.gather(*(
        run_import(stub, pb.ImportSieRequest(tenant=t, omit_raw_chunks=True)) for t in tenants
    ))
    assert all(r[-1].WhichOneof("event") == "summary" for r in results)
    for tenant in tenants:
        (record,) = (await stub.ListImports(pb.ListImportsRequest(tenant=tenant))).imports
        assert record.status == Import.STATUS_SUCCEEDED


async def test_a_passed_deadline_stops_the_import_and_records_it_cancelled(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    await connect(stub, "acme", sandbox.tenants[0])
    sandbox.add_fault("slow_sie", chunk_bytes=1024, chunk_delay_ms=100)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await run_import(stub, pb.ImportSieRequest(tenant="acme"), deadline_s=1.0)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    for _ in range(50):
        (record,) = (await stub.ListImports(pb.ListImportsRequest(tenant="acme"))).imports
        if record.status != Import.STATUS_RUNNING:
            break
        await asyncio.sleep(0.1)
    assert (record.status, record.error_reason) == (Import.STATUS_CANCELLED, "CANCELLED")


async def test_an_import_waiting_for_a_free_parser_says_so(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    env = service_env(sandbox.base_url, tmp_path / "bridge.sqlite3", FORTNOX_BRIDGE_SIE_PARSERS="1")
    async with serving_in_process(load_settings(env), TracerProvider()) as running, \
            grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = pb_grpc.FortnoxServiceStub(channel)
        slow, quick = sandbox.tenants[0], sandbox.tenants[1]
        await connect(stub, "slow", slow)
        await connect(stub, "quick", quick)
        sandbox.add_fault("slow_sie", tenant=slow.id, chunk_bytes=1024, chunk_delay_ms=5)
        first = stub.ImportSie(pb.ImportSieRequest(tenant="slow", omit_raw_chunks=True))
        async for message in first:  # the one parser is now busy with its download
            if message.WhichOneof("event") == "progress" and message.progress.bytes_done:
                break
        rest = asyncio.ensure_future(_drain(first))
        second = await run_import(stub, pb.ImportSieRequest(tenant="quick", omit_raw_chunks=True))
        await rest
    said = [m.progress.message for m in second if m.WhichOneof("event") == "progress"]
    assert any(text.startswith("waiting for a free SIE parser") for text in said)
    assert second[-1].WhichOneof("event") == "summary"


async def _drain(call: AsyncIterator[pb.ImportSieResponse]) -> None:
    async for _ in call:
        pass


class SlowDropHistory(SqliteImportHistory):
    """The real store, whose superseded fingerprints take a while to drop (as a large year's
    do), so that a shutdown racing the clean-up is not won by luck."""

    async def drop_superseded(self, import_id: str) -> None:
        await asyncio.sleep(0.5)
        await super().drop_superseded(import_id)


async def test_closing_the_import_waits_for_its_clean_up(
    sandbox: SandboxHandle, settings: Settings
) -> None:
    # The composition root closes the history's database after SieImport.aclose(); a clean-up
    # still running then would use a closed connection (this crashed a CI run).
    store = SqliteTokenStore(settings.db_path, settings.token_key)
    history = SlowDropHistory(settings.db_path, utc_now)
    db = open_database(settings.db_path)
    parsers = ProcessParsers(1)
    try:
        async with FortnoxAdapter(settings, store) as adapter:
            start = await adapter.connections.begin_connect("acme", sandbox.redirect_uri)
            code = sandbox.consent_code(sandbox.tenants[0].id, sandbox.redirect_uri,
                                        state=start.state)
            await adapter.connections.complete_connect(start.state, code)
            imports = SieImport(adapter.api, store, history, parsers, utc_now)
            request = SieImportRequest(tenant="acme", stream_raw=False)
            first = [e async for e in imports.run(request)][-1]
            assert isinstance(first, ImportSummary)
            [e async for e in imports.run(request)]  # supersedes the first one's fingerprints
            await imports.aclose()
            await history.aclose()
        left = db.execute("SELECT COUNT(*) FROM voucher_digest_batches WHERE import_id = ?",
                          [first.import_id]).fetchone()[0]
        assert left == 0
    finally:
        await parsers.aclose()
        await history.aclose()
        db.close()
        await store.aclose()
