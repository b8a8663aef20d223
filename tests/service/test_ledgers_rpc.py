"""ImportLedgers through a real gRPC channel against the sandbox, checked against an independent
computation from the sandbox's raw invoices and payments (plain httpx)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.type import date_pb2

from adapters.sqlite.imports import SqliteImportHistory
from core.imports import ImportRecord, ImportStatus
from sandbox.testing import ALL_SCOPES, SandboxHandle, running_sandbox
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import import_history_pb2 as history_pb
from spiris.skattbokslut.fortnox.v1 import ledgers_pb2 as l_pb
from tests.harness.bridge import TENANT, Bridge, serving_bridge
from tests.harness.connect import connect

BALANCE_DATE = date(2025, 12, 31)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox(vouchers_per_year=30, rate_limit=10_000, rate_window_seconds=1.0) as sb:
        yield sb


@pytest.fixture
async def bridge(sandbox: SandboxHandle, tmp_path: Path) -> AsyncIterator[Bridge]:
    async with serving_bridge(sandbox, tmp_path) as served:
        yield served


def _proto(day: date) -> date_pb2.Date:
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def _ore(value: Any) -> int:
    return int((Decimal(str(value)) * 100).quantize(Decimal(1), ROUND_HALF_UP))


def _all(client: httpx.Client, path: str, key: str) -> list[dict[str, Any]]:
    items, page = [], 1
    while True:
        data = client.get(path, params={"limit": 500, "page": page}).json()
        items += data[key]
        if page >= data["MetaInformation"]["@TotalPages"]:
            return items
        page += 1


def expected_open(sb: SandboxHandle, tenant_id: int, day: date) -> dict[tuple[str, str], int]:
    """(ledger, document number) -> open amount in öre of the document currency, computed
    from raw JSON: total, minus payments (in the invoice currency) and credit notes dated on
    or before ``day``; cancelled and later invoices are never open."""
    token = sb.tokens(tenant_id)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=sb.api_url + "/", headers=headers) as client:
        open_: dict[tuple[str, str], int] = {}
        for ledger, path, key, pay_path, pay_key, single in (
            ("customer", "invoices", "Invoices", "invoicepayments", "InvoicePayments",
             "InvoicePayment"),
            ("supplier", "supplierinvoices", "SupplierInvoices", "supplierinvoicepayments",
             "SupplierInvoicePayments", "SupplierInvoicePayment"),
        ):
            number_key = "DocumentNumber" if ledger == "customer" else "GivenNumber"
            for doc in _all(client, path, key):
                if doc.get("Cancelled") or doc.get("Cancel"):
                    continue
                if date.fromisoformat(doc["InvoiceDate"]) > day:
                    continue
                open_[(ledger, str(doc[number_key]))] = _ore(doc["Total"])
            for item in _all(client, pay_path, pay_key):
                payment = client.get(f"{pay_path}/{item['Number']}").json()[single]
                target = (ledger, str(payment["InvoiceNumber"]))
                if date.fromisoformat(payment["PaymentDate"]) <= day and target in open_:
                    open_[target] -= _ore(payment["AmountCurrency"])
        for (ledger, number), amount in list(open_.items()):
            if ledger == "customer" and amount < 0:  # a credit note settles its invoice
                note = client.get(f"invoices/{number}").json()["Invoice"]
                original = ("customer", note["CreditInvoiceReference"])
                open_[original] += amount
                del open_[(ledger, number)]
    return {k: v for k, v in open_.items() if v}


async def _import(bridge: Bridge, day: date, **fields: Any) -> list[pb.ImportLedgersResponse]:
    request = pb.ImportLedgersRequest(tenant=TENANT, balance_date=_proto(day), **fields)
    return [message async for message in bridge.stub.ImportLedgers(request)]


async def test_open_items_match_an_independent_computation(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    tenant = sandbox.tenants[0]
    await connect(bridge.stub, TENANT, tenant)
    messages = await _import(bridge, BALANCE_DATE)
    items = [m.open_item for m in messages if m.HasField("open_item")]
    names = {l_pb.LEDGER_KIND_CUSTOMER: "customer", l_pb.LEDGER_KIND_SUPPLIER: "supplier"}
    got = {(names[i.ledger], i.document_number): i.open_minor for i in items}
    assert got == expected_open(sandbox, tenant.id, BALANCE_DATE)
    assert any(i.currency == "EUR" and i.open_sek_minor > i.open_minor for i in items)
    assert any(i.payments_after_date for i in items)
    assert all(i.counterparty.name for i in items)
    summaries = [m.ledger_summary for m in messages if m.HasField("ledger_summary")]
    for summary in summaries:
        assert summary.reconciliation.reconciled, summary.reconciliation
        assert summary.open_item_count == sum(1 for i in items if i.ledger == summary.ledger)
    assert messages[0].HasField("progress") and messages[-1].HasField("summary")
    import_id = messages[-1].summary.import_id
    assert import_id and len(messages[-1].summary.ledgers) == 2
    assert history_pb.ImportProgress.STAGE_DONE in {
        m.progress.stage for m in messages if m.HasField("progress")}


async def test_reconciliation_finds_the_planted_difference(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    planted = next(t for t in sandbox.tenants if t.planted_difference)
    await connect(bridge.stub, TENANT, planted)
    raw = sandbox.reconciliation(planted.id, BALANCE_DATE.isoformat())
    expected = _ore(raw["account_1510"]) - _ore(raw["open_customer_invoices_sek"])
    assert expected == 125_000
    for day, code in ((BALANCE_DATE, "BOOKED_OUTSIDE_LEDGER"),
                      (date(2026, 3, 31), "OPENING_BALANCE_DIFFERENCE")):
        messages = await _import(bridge, day, ledgers=[l_pb.LEDGER_KIND_CUSTOMER])
        (summary,) = [m.ledger_summary for m in messages if m.HasField("ledger_summary")]
        rec = summary.reconciliation
        assert not rec.reconciled and rec.difference_minor == 125_000
        assert [(n.code, n.amount_minor) for n in rec.notes] == [(code, 125_000)]
        assert rec.unexplained_minor == 0


async def test_documents_are_streamed_when_asked(bridge: Bridge, sandbox: SandboxHandle) -> None:
    await connect(bridge.stub, TENANT, sandbox.tenants[0])
    messages = await _import(bridge, BALANCE_DATE, include_documents=True)
    chunks = [m.document_chunk for m in messages if m.HasField("document_chunk")]
    items = [m.open_item for m in messages if m.HasField("open_item")]
    finished = {c.document_id for c in chunks if c.last}
    assert finished and finished <= {d.document_id for i in items for d in i.documents}
    assert all(c.data.startswith(b"%PDF") for c in chunks if c.offset == 0)
    assert messages[-1].summary.document_count == len(finished)


async def test_a_document_that_cannot_be_fetched_is_reported(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    scopes = [s for s in ALL_SCOPES if s != "archive"]  # supplier documents live there
    await connect(bridge.stub, TENANT, sandbox.tenants[0], scopes=scopes)
    messages = await _import(bridge, BALANCE_DATE, include_documents=True)
    chunks = [m.document_chunk for m in messages if m.HasField("document_chunk")]
    missing = [c for c in chunks if c.HasField("unavailable")]
    supplier_refs = {d.document_id for m in messages if m.HasField("open_item")
                     and m.open_item.ledger == l_pb.LEDGER_KIND_SUPPLIER
                     for d in m.open_item.documents}
    assert supplier_refs and {c.document_id for c in missing} == supplier_refs
    assert all(c.last and not c.data and c.unavailable.reason == "FORTNOX_SCOPE_MISSING"
               for c in missing)
    summary = messages[-1].summary
    assert list(summary.unavailable_documents) == missing
    assert summary.document_count == len({c.document_id for c in chunks if c.last}) - len(
        missing)


async def _last_import(bridge: Bridge) -> ImportRecord:
    """The tenant's newest import, read from the bridge's SQLite file once it has ended (the
    server records a cancel as the call goes away, a moment after the caller has gone)."""
    history = SqliteImportHistory(bridge.db_path)
    try:
        for _ in range(100):
            record = (await history.list_imports(TENANT, None, 1, "")).imports[0]
            if record.status is not ImportStatus.RUNNING:
                return record
            await asyncio.sleep(0.05)
        return record
    finally:
        await history.aclose()


async def test_a_cancelled_import_stops_and_is_recorded_cancelled(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    await connect(bridge.stub, TENANT, sandbox.tenants[0])
    fault = sandbox.add_fault("latency", latency_ms=100)
    try:
        call = bridge.stub.ImportLedgers(
            pb.ImportLedgersRequest(tenant=TENANT, balance_date=_proto(BALANCE_DATE)))
        async for message in call:
            if message.HasField("progress"):
                break
        call.cancel()
        record = await _last_import(bridge)
        await asyncio.sleep(0.3)  # a request already out when the call went away is answered
        seen = sandbox.stats()["requests"]
        await asyncio.sleep(0.5)
        assert sandbox.stats()["requests"] == seen, "Fortnox is still being asked"
    finally:
        sandbox.remove_fault(fault)
    assert (record.status, record.error_reason) == (ImportStatus.CANCELLED, "CANCELLED")


async def test_a_passed_deadline_stops_the_import_and_records_it_cancelled(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    await connect(bridge.stub, TENANT, sandbox.tenants[0])
    fault = sandbox.add_fault("latency", latency_ms=100)
    try:
        request = pb.ImportLedgersRequest(tenant=TENANT, balance_date=_proto(BALANCE_DATE))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            [m async for m in bridge.stub.ImportLedgers(request, timeout=0.5)]
        record = await _last_import(bridge)
    finally:
        sandbox.remove_fault(fault)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert (record.status, record.error_reason) == (ImportStatus.CANCELLED, "CANCELLED")
