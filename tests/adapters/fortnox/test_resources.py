"""Typed reads of every resource against the sandbox: pages, money, dates, files, SIE."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from adapters.fortnox import FortnoxAdapter
from core.errors import FortnoxNotFound
from core.fortnox_api import FileSource, InvoiceFilter
from sandbox.testing import SandboxHandle
from tests.adapters.fortnox.conftest import TENANT, answers
from tests.harness.connect import connect_adapter


@pytest.fixture
async def year_id(adapter: FortnoxAdapter, sandbox: SandboxHandle) -> int:
    await connect_adapter(adapter, TENANT)
    return (await adapter.api.financial_years(TENANT))[-1].id


async def test_company_and_years(adapter: FortnoxAdapter, sandbox: SandboxHandle) -> None:
    await connect_adapter(adapter, TENANT)
    company = sandbox.tenants[0]
    info = await adapter.api.company_information(TENANT)
    assert (info.company_name, info.organisation_number) == (
        company.name, company.organisation_number)
    years = await adapter.api.financial_years(TENANT)
    first = years[0]
    found = await adapter.api.financial_year_for_date(TENANT, first.to_date)
    assert found == first
    assert [y.from_date.isoformat() for y in years] == [
        y["from"] for y in company.financial_years]


async def test_vouchers_walk_every_page_lazily(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, year_id: int
) -> None:
    expected = sandbox.all_vouchers(sandbox.tenants[0].id, year_id)
    assert len(expected) > 500  # more than one page of 500
    before = answers(sandbox, 200)
    iterator = adapter.api.vouchers(TENANT, year_id)
    first = await anext(aiter(iterator))
    assert answers(sandbox, 200) == before + 1  # only the first page so far
    rest = [v async for v in iterator]
    listed = [first, *rest]
    assert sorted((v.series, v.number) for v in listed) == sorted(
        (v["VoucherSeries"], v["VoucherNumber"]) for v in expected)
    one = expected[0]
    detail = await adapter.api.voucher(TENANT, year_id, one["VoucherSeries"],
                                       one["VoucherNumber"])
    assert len(detail.rows) == len(one["VoucherRows"])
    assert sum(r.debit for r in detail.rows if not r.removed) == sum(
        r.credit for r in detail.rows if not r.removed)
    assert all(isinstance(r.debit, Decimal) for r in detail.rows)
    with pytest.raises(FortnoxNotFound):
        await adapter.api.voucher(TENANT, year_id, "A", 999_999)


async def test_chart_series_and_locked_period(
    adapter: FortnoxAdapter, year_id: int
) -> None:
    accounts = await adapter.api.accounts(TENANT, year_id)
    numbers = {a.number for a in accounts}
    assert {1930, 3001} <= numbers
    assert all(isinstance(a.balance_brought_forward, Decimal) for a in accounts)
    series = await adapter.api.voucher_series(TENANT, year_id)
    assert "A" in {s.code for s in series}
    await adapter.api.locked_period_end(TENANT)  # parses either a date or ""


async def test_ledgers(adapter: FortnoxAdapter, year_id: int) -> None:
    customers = [c async for c in adapter.api.customers(TENANT)]
    suppliers = [s async for s in adapter.api.suppliers(TENANT)]
    invoices = [i async for i in adapter.api.invoices(TENANT)]
    payments = [p async for p in adapter.api.invoice_payments(TENANT)]
    supplier_invoices = [i async for i in adapter.api.supplier_invoices(TENANT)]
    supplier_payments = [p async for p in adapter.api.supplier_invoice_payments(TENANT)]
    assert customers and suppliers and invoices and payments and supplier_invoices
    assert supplier_payments
    assert {i.customer_number for i in invoices} <= {c.customer_number for c in customers}
    assert {p.invoice_number for p in payments} <= {i.document_number for i in invoices}
    assert {p.invoice_number for p in supplier_payments} <= {
        i.given_number for i in supplier_invoices}
    unpaid = [i async for i in adapter.api.invoices(TENANT, filter=InvoiceFilter.UNPAID)]
    assert all(i.balance != 0 for i in unpaid)
    single = await adapter.api.invoice(TENANT, invoices[0].document_number)
    assert single.total == invoices[0].total
    assert single.credit is not None
    supplier_single = await adapter.api.supplier_invoice(TENANT, supplier_invoices[0].given_number)
    assert supplier_single.total == supplier_invoices[0].total


async def test_files_and_invoice_pdf(adapter: FortnoxAdapter, year_id: int) -> None:
    connections = [c async for c in adapter.api.supplier_invoice_file_connections(TENANT)]
    assert connections
    async with await adapter.api.open_file(TENANT, connections[0].file_id,
                                           FileSource.CONNECTION) as stream:
        content = b"".join([chunk async for chunk in stream])
    assert content.startswith(b"%PDF")
    assert stream.content_type == "application/pdf"
    with pytest.raises(FortnoxNotFound):  # a connection's FileId is no archive Id
        await adapter.api.open_file(TENANT, connections[0].file_id, FileSource.ARCHIVE)
    invoice = await anext(aiter(adapter.api.invoices(TENANT)))
    async with await adapter.api.open_invoice_pdf(TENANT, invoice.document_number) as pdf:
        body = b"".join([chunk async for chunk in pdf])
    assert pdf.content_type == "application/pdf"
    assert body.startswith(b"%PDF")


async def test_sie_bytes_arrive_unchanged_and_closing_stops_the_download(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, year_id: int
) -> None:
    async with await adapter.api.open_sie_export(TENANT, year_id) as stream:
        whole = b"".join([chunk async for chunk in stream])
    assert stream.file_name.endswith((".se", ".SE", ".si", ".SI"))
    assert whole.startswith(b"#FLAGGA")
    sandbox.add_fault("slow_sie", count=1, chunk_bytes=256, chunk_delay_ms=20)
    stream = await adapter.api.open_sie_export(TENANT, year_id)
    first = await anext(aiter(stream))
    await asyncio.wait_for(stream.aclose(), 1.0)  # does not wait for the slow rest
    assert whole.startswith(first)
