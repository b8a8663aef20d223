"""DownloadVoucherDocuments and DownloadYearDocuments through a real gRPC channel against the
sandbox: each file byte for byte as the sandbox keeps it, with its SHA-256; a year with
progress, resumed; the scopes named when missing; a dropped download fetched again; a file
that cannot be fetched reported while the others arrive; many tenants within the rate limit."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from core.errors import FortnoxScopeMissing
from core.fortnox_api import FileSource
from sandbox.testing import ALL_SCOPES, SandboxHandle, running_sandbox
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import import_history_pb2 as history_pb
from spiris.skattbokslut.fortnox.v1 import sie_import_pb2 as sie_pb
from spiris.skattbokslut.fortnox.v1 import voucher_documents_pb2 as doc_pb
from tests.harness.bridge import TENANT, Bridge, serving_bridge
from tests.harness.connect import connect
from tests.harness.errors import error_info, fails
from tests.harness.sandbox import SMALL_SEED

YEAR = 1
Voucher = tuple[str, int]  # series, number


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox(**SMALL_SEED, rate_limit=10_000, rate_window_seconds=1.0) as sb:
        yield sb


@pytest.fixture
async def bridge(sandbox: SandboxHandle, tmp_path: Path) -> AsyncIterator[Bridge]:
    sandbox.reset()
    async with serving_bridge(sandbox, tmp_path) as served:
        yield served


def _files(sb: SandboxHandle, company: int, year: int = YEAR) -> dict[Voucher, list[str]]:
    """The sandbox's own record of which files each voucher of ``year`` has."""
    found: dict[Voucher, list[str]] = {}
    for c in sb.state.books[company].voucher_files:
        if c.voucher.year_id == year:
            found.setdefault((c.voucher.series, c.voucher.number), []).append(c.file_id)
    return found


def _year(year_id: int = YEAR) -> sie_pb.YearSelector:
    return sie_pb.YearSelector(financial_year_id=year_id)


def _received(messages: list[doc_pb.DownloadVoucherDocumentsResponse]
              | list[doc_pb.DownloadYearDocumentsResponse]) -> dict[str, tuple[
                  doc_pb.VoucherDocument, bytes]]:
    """file id -> (its header, the bytes of its chunks in order), checking the order."""
    headers: dict[str, doc_pb.VoucherDocument] = {}
    data: dict[str, bytearray] = {}
    current = None
    for m in messages:
        if m.HasField("document"):
            assert current is None, "a document started before the last one ended"
            current = m.document.file_id
            headers[current], data[current] = m.document, bytearray()
        elif m.HasField("chunk"):
            assert m.chunk.file_id == current and m.chunk.offset == len(data[current])
            assert len(m.chunk.data) <= 1 << 20
            data[current] += m.chunk.data
            if m.chunk.last:
                current = None
    assert current is None
    return {k: (headers[k], bytes(v)) for k, v in data.items()}


async def _voucher(bridge: Bridge, series: str, number: int, year: int = YEAR
                   ) -> list[doc_pb.DownloadVoucherDocumentsResponse]:
    call = bridge.stub.DownloadVoucherDocuments(doc_pb.DownloadVoucherDocumentsRequest(
        tenant=TENANT, year=_year(year), voucher_series=series, voucher_number=number))
    return [m async for m in call]


async def _whole_year(bridge: Bridge, **fields: object
                      ) -> list[doc_pb.DownloadYearDocumentsResponse]:
    call = bridge.stub.DownloadYearDocuments(doc_pb.DownloadYearDocumentsRequest(
        tenant=TENANT, year=_year(), **fields))  # type: ignore[arg-type]
    return [m async for m in call]


async def test_a_vouchers_documents_arrive_byte_for_byte(bridge: Bridge,
                                                         sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    await connect(bridge.stub, TENANT, company)
    files = _files(sandbox, company.id)
    (series, number), ids = max(files.items(), key=lambda pair: len(pair[1]))
    assert len(ids) >= 2
    got = _received(await _voucher(bridge, series, number))
    assert sorted(got) == sorted(ids)
    types = set()
    for file_id, (header, data) in got.items():
        assert data == sandbox.file_bytes(company.id, file_id)
        assert header.size == len(data) and header.sha256 == hashlib.sha256(data).hexdigest()
        assert header.file_name.startswith("underlag-")
        assert (header.voucher.series, header.voucher.number) == (series, number)
        types.add(header.content_type)
    assert types == {"application/pdf", "image/jpeg"}


async def test_a_voucher_without_documents_is_an_empty_stream(bridge: Bridge,
                                                              sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    await connect(bridge.stub, TENANT, company)
    files = _files(sandbox, company.id)
    bare = next(n for n in range(1, 31) if ("A", n) not in files)
    assert await _voucher(bridge, "A", bare) == []


async def test_a_large_file_arrives_in_chunks_of_at_most_one_mib(
        bridge: Bridge, sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    await connect(bridge.stub, TENANT, company)
    file_id = sandbox.attach_file(company.id, YEAR, "A", 2, size=3_500_000)
    messages = await _voucher(bridge, "A", 2)
    header, data = _received(messages)[file_id]
    assert data == sandbox.file_bytes(company.id, file_id)
    assert header.sha256 == hashlib.sha256(data).hexdigest()
    assert sum(m.chunk.file_id == file_id for m in messages if m.HasField("chunk")) == 4


async def test_a_years_documents_arrive_with_progress(bridge: Bridge,
                                                      sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    await connect(bridge.stub, TENANT, company)
    expected = {f for ids in _files(sandbox, company.id).values() for f in ids}
    messages = await _whole_year(bridge)
    got = _received(messages)
    assert set(got) == expected
    for file_id, (header, data) in got.items():
        assert data == sandbox.file_bytes(company.id, file_id)
        assert header.sha256 == hashlib.sha256(data).hexdigest()
    progress = [m.progress for m in messages if m.HasField("progress")]
    assert progress[0].files_total == len(expected) and progress[0].files_done == 0
    assert [p.files_done for p in progress] == list(range(len(expected) + 1))
    assert progress[0].estimated_seconds_left > 0 and progress[-1].estimated_seconds_left == 0
    assert progress[-1].bytes_done == sum(len(d) for _, d in got.values())
    summary = messages[-1].summary
    assert (summary.financial_year_id, summary.files_total, summary.files_sent,
            summary.files_skipped, summary.files_failed) == (YEAR, len(expected),
                                                             len(expected), 0, 0)


async def test_a_resumed_year_sends_only_what_is_missing(bridge: Bridge,
                                                         sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    await connect(bridge.stub, TENANT, company)
    expected = {f for ids in _files(sandbox, company.id).values() for f in ids}
    call = bridge.stub.DownloadYearDocuments(doc_pb.DownloadYearDocumentsRequest(
        tenant=TENANT, year=_year()))
    first: list[doc_pb.DownloadYearDocumentsResponse] = []
    async for message in call:  # the caller's connection drops after three files
        first.append(message)
        if sum(m.HasField("chunk") and m.chunk.last for m in first) == 3:
            break
    call.cancel()
    have = set(_received(first))
    assert len(have) == 3
    second = await _whole_year(bridge, received_file_ids=sorted(have))
    again = _received(second)
    assert set(again) == expected - have
    summary = second[-1].summary
    assert (summary.files_total, summary.files_skipped, summary.files_sent) == (
        len(expected), 3, len(expected) - 3)
    assert next(m.progress.files_done for m in second if m.HasField("progress")) == 3


async def test_series_and_amount_filters(bridge: Bridge, sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    await connect(bridge.stub, TENANT, company)
    assert _received(await _whole_year(bridge, voucher_series=["B"])) == {}
    amounts = {(v["VoucherSeries"], v["VoucherNumber"]): sum(
        round(r["Debit"] * 100) for r in v["VoucherRows"] if not r.get("Removed"))
        for v in sandbox.all_vouchers(company.id, YEAR)}
    files = _files(sandbox, company.id)
    floor = sorted(amounts[k] for k in files)[len(files) // 2]
    wanted = {f for k, ids in files.items() if amounts[k] >= floor for f in ids}
    got = _received(await _whole_year(bridge, min_amount_minor=floor))
    assert set(got) == wanted and 0 < len(wanted) < sum(map(len, files.values()))


@pytest.mark.parametrize("missing", ["connectfile", "archive"])
async def test_a_connection_without_a_scope_gets_it_named(
        bridge: Bridge, sandbox: SandboxHandle, missing: str) -> None:
    await connect(bridge.stub, TENANT, sandbox.tenants[0],
                  scopes=[s for s in ALL_SCOPES if s != missing])
    for call in (bridge.stub.DownloadVoucherDocuments(doc_pb.DownloadVoucherDocumentsRequest(
                     tenant=TENANT, year=_year(), voucher_series="A", voucher_number=4)),
                 bridge.stub.DownloadYearDocuments(doc_pb.DownloadYearDocumentsRequest(
                     tenant=TENANT, year=_year()))):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            [m async for m in call]
        info = error_info(caught.value)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert (info.reason, info.metadata["scope"]) == ("FORTNOX_SCOPE_MISSING", missing)
        assert missing in (caught.value.details() or "")
        assert "connect" in (caught.value.details() or "").lower()


@pytest.mark.parametrize("missing", ["connectfile", "archive"])
async def test_fortnoxs_refusal_names_the_scope_too(
        bridge: Bridge, sandbox: SandboxHandle, missing: str) -> None:
    """The client names the scope of Fortnox's own 403, for connections whose granted scopes
    the service does not know."""
    await connect(bridge.stub, TENANT, sandbox.tenants[0],
                  scopes=[s for s in ALL_SCOPES if s != missing])
    api = bridge.adapter.api
    file_id = sandbox.state.books[sandbox.tenants[0].id].voucher_files[0].file_id

    async def call() -> object:
        if missing == "connectfile":
            return [c async for c in api.voucher_file_connections(TENANT, financial_year_id=YEAR)]
        return await api.open_file(TENANT, file_id, FileSource.CONNECTION)

    with pytest.raises(FortnoxScopeMissing) as caught:
        await call()
    assert caught.value.metadata["scope"] == missing
    assert caught.value.metadata["http_status"] == "403"


async def test_a_download_dropped_mid_file_is_fetched_again_unnoticed(
        bridge: Bridge, sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    await connect(bridge.stub, TENANT, company)
    file_id = sandbox.attach_file(company.id, YEAR, "A", 2, size=2_000_000)
    sandbox.add_fault("drop", path="/3/archive", count=1)
    got = _received(await _voucher(bridge, "A", 2))
    assert sandbox.faults() == []  # the drop happened
    header, data = got[file_id]
    assert data == sandbox.file_bytes(company.id, file_id)
    assert header.sha256 == hashlib.sha256(data).hexdigest()


async def test_a_file_that_cannot_be_fetched_is_reported_and_the_others_follow(
        bridge: Bridge, sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    await connect(bridge.stub, TENANT, company)
    files = _files(sandbox, company.id)
    everything = {f for ids in files.values() for f in ids}
    gone = sorted(everything)[1]
    del sandbox.state.books[company.id].files[gone]  # Fortnox answers 404 for it
    messages = await _whole_year(bridge)
    unavailable = [m.unavailable for m in messages if m.HasField("unavailable")]
    assert [(u.file_id, u.reason) for u in unavailable] == [(gone, "FORTNOX_NOT_FOUND")]
    assert set(_received(messages)) == everything - {gone}
    summary = messages[-1].summary
    assert (summary.files_failed, summary.files_sent) == (1, len(everything) - 1)
    # Fortnox failing on one file past the client's retries (FAST_RETRY: 4 tries)
    sandbox.add_fault("error", status=503, path="/3/archive", count=4)
    messages = await _whole_year(bridge)
    unavailable = [m.unavailable for m in messages if m.HasField("unavailable")]
    reasons = {u.reason: u.file_id for u in unavailable}
    assert len(unavailable) == 2 and set(reasons) == {"FORTNOX_NOT_FOUND", "FORTNOX_UNAVAILABLE"}
    assert set(_received(messages)) == everything - {gone, reasons["FORTNOX_UNAVAILABLE"]}


async def test_requests_are_checked(bridge: Bridge, sandbox: SandboxHandle) -> None:
    await connect(bridge.stub, TENANT, sandbox.tenants[0])

    async def drain(call: grpc.aio.UnaryStreamCall) -> None:
        [m async for m in call]

    await fails(drain(bridge.stub.DownloadYearDocuments(doc_pb.DownloadYearDocumentsRequest(
        tenant=TENANT))), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    await fails(drain(bridge.stub.DownloadVoucherDocuments(
        doc_pb.DownloadVoucherDocumentsRequest(tenant=TENANT, year=_year(),
                                               voucher_series="A"))),
                grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    await fails(drain(bridge.stub.DownloadYearDocuments(doc_pb.DownloadYearDocumentsRequest(
        tenant=TENANT, year=_year(99)))), grpc.StatusCode.INVALID_ARGUMENT,
        "FINANCIAL_YEAR_NOT_FOUND")
    await fails(drain(bridge.stub.DownloadYearDocuments(doc_pb.DownloadYearDocumentsRequest(
        tenant=TENANT, year=_year(), received_file_ids=["x"] * 20_001))),
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")


async def test_import_sie_records_count_each_vouchers_documents(
        bridge: Bridge, sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    await connect(bridge.stub, TENANT, company)
    before = sandbox.stats()["requests"].get(str(company.id), {}).get("200", 0)
    call = bridge.stub.ImportSie(pb.ImportSieRequest(
        tenant=TENANT, years=[_year()], omit_raw_chunks=True, include_records=True))
    vouchers = [v for m in [m async for m in call] if m.HasField("records")
                for v in m.records.vouchers]
    expected = Counter({f"{s}{n}": len(ids) for (s, n), ids in _files(sandbox,
                                                                      company.id).items()})
    assert vouchers and all(v.HasField("document_count") for v in vouchers)
    assert {f"{v.series}{v.number}": v.document_count for v in vouchers
            if v.document_count} == expected
    # financial years, SIE and one page of connections: no call per voucher
    used = sandbox.stats()["requests"][str(company.id)]["200"] - before
    assert used <= 4


async def test_import_sie_records_wait_for_a_slow_listing_while_the_file_goes_on(
        bridge: Bridge, sandbox: SandboxHandle) -> None:
    """The listing is slowed far beyond the small file's download: the whole file reaches
    the caller first (the parse did not wait), then the records, every one with its count."""
    company = sandbox.tenants[0]
    await connect(bridge.stub, TENANT, company)
    fault = sandbox.add_fault("latency", path="/3/voucherfileconnections", latency_ms=8_000,
                              count=1)
    call = bridge.stub.ImportSie(pb.ImportSieRequest(
        tenant=TENANT, years=[_year()], include_records=True))
    messages = [m async for m in call]
    kinds = [m.WhichOneof("event") for m in messages]
    last_chunk = max(i for i, m in enumerate(messages)
                     if m.HasField("chunk") and m.chunk.last)
    assert last_chunk < kinds.index("records")
    assert any(m.HasField("progress") and m.progress.stage
               == history_pb.ImportProgress.STAGE_FETCHING_DOCUMENTS for m in messages)
    vouchers = [v for m in messages if m.HasField("records") for v in m.records.vouchers]
    expected = Counter({f"{s}{n}": len(ids) for (s, n), ids in _files(sandbox,
                                                                      company.id).items()})
    assert vouchers and all(v.HasField("document_count") for v in vouchers)
    assert {f"{v.series}{v.number}": v.document_count for v in vouchers
            if v.document_count} == expected
    assert fault not in [f["id"] for f in sandbox.faults()]  # the slow page was the one


async def test_many_tenants_at_once_stay_within_the_rate_limit(tmp_path: Path) -> None:
    with running_sandbox(**SMALL_SEED, rate_limit=10, rate_window_seconds=1.0) as sb:
        async with serving_bridge(sb, tmp_path, rate_limit=10, window_s=1.0) as bridge:
            tenants = [(f"t{i}", sb.tenants[i % 3]) for i in range(6)]
            for tenant, company in tenants:
                await connect(bridge.stub, tenant, company)
            # A connect's one lookup counts under the tenant, not yet under its company (see
            # README, "Rate limit"): let those leave the company's window first.
            await asyncio.sleep(1.5)

            async def year(tenant: str) -> doc_pb.YearDocumentsSummary:
                call = bridge.stub.DownloadYearDocuments(doc_pb.DownloadYearDocumentsRequest(
                    tenant=tenant, year=_year()), timeout=300)
                summary: doc_pb.YearDocumentsSummary = [m async for m in call][-1].summary
                return summary

            summaries = await asyncio.gather(*(year(t) for t, _ in tenants))
            for (_, company), summary in zip(tenants, summaries, strict=True):
                files = sum(map(len, _files(sb, company.id).values()))
                assert (summary.files_sent, summary.files_failed) == (files, 0)
            answered = sb.stats()["requests"]
            assert all("429" not in statuses for statuses in answered.values()), answered
