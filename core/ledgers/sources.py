"""Reading the ledgers' inputs from Fortnox: documents, payments and the general ledger.

The general ledger comes from the year's SIE 4 export (one download gives the opening
balances and every voucher row), not from one call per voucher.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

from core.fortnox_api import (
    FinancialYear,
    FortnoxApi,
    InvoicePayment,
    SupplierInvoicePayment,
)
from core.ledgers.model import Document, Ledger, Payment
from core.ledgers.reconciliation import LEDGER_ACCOUNTS, GeneralLedger, LedgerRow
from core.money import to_cent
from sie import Balance, BalanceKind, RowKind, SieReader, Voucher


def _in_currency(amount_sek: Decimal, amount_currency: Decimal | None, currency: str,
                 rate: Decimal) -> Decimal:
    """A payment in the invoice's currency: Fortnox states it only on single lookups, so a
    list item's SEK amount is converted back at the payment's own rate."""
    if amount_currency is not None:
        return amount_currency
    if currency == "SEK" or not rate:
        return amount_sek
    return to_cent(amount_sek / rate)


async def _payments(
    source: AsyncIterator[InvoicePayment] | AsyncIterator[SupplierInvoicePayment],
) -> list[Payment]:
    """Every dated payment of a ledger, with its amount in the invoice's currency and in SEK."""
    return [
        Payment(p.number, p.invoice_number, p.payment_date,
                _in_currency(p.amount, p.amount_currency, p.currency, p.currency_rate), p.amount)
        async for p in source
        if p.payment_date is not None
    ]


async def customer_ledger(
    api: FortnoxApi, tenant: str, balance_date: date, deadline: float | None
) -> tuple[list[Document], list[Payment]]:
    """Customer invoices dated on or before the date, and every customer payment."""
    org = {c.customer_number: c.organisation_number
           async for c in api.customers(tenant, deadline=deadline)}
    documents = []
    async for invoice in api.invoices(tenant, to_date=balance_date, deadline=deadline):
        if invoice.invoice_date is None:
            continue
        credits = ""
        if invoice.total < 0:
            single = await api.invoice(tenant, invoice.document_number, deadline=deadline)
            credits = single.credit_invoice_reference
        documents.append(Document(
            Ledger.CUSTOMER, invoice.document_number, "", invoice.customer_number,
            invoice.customer_name, org.get(invoice.customer_number, ""), invoice.invoice_date,
            invoice.due_date, invoice.total, invoice.currency, invoice.currency_rate,
            invoice.booked, invoice.cancelled, invoice.total < 0, credits))
    return documents, await _payments(api.invoice_payments(tenant, deadline=deadline))


async def supplier_ledger(
    api: FortnoxApi, tenant: str, balance_date: date, deadline: float | None
) -> tuple[list[Document], list[Payment]]:
    """Supplier invoices dated on or before the date, and every supplier payment."""
    org = {s.supplier_number: s.organisation_number
           async for s in api.suppliers(tenant, deadline=deadline)}
    documents = []
    async for invoice in api.supplier_invoices(tenant, deadline=deadline):
        if invoice.invoice_date is None or invoice.invoice_date > balance_date:
            continue
        credits = ""
        if invoice.credit:
            single = await api.supplier_invoice(tenant, invoice.given_number, deadline=deadline)
            credits = single.credit_reference
        documents.append(Document(
            Ledger.SUPPLIER, invoice.given_number, invoice.invoice_number,
            invoice.supplier_number, invoice.supplier_name, org.get(invoice.supplier_number, ""),
            invoice.invoice_date, invoice.due_date, invoice.total, invoice.currency,
            invoice.currency_rate, invoice.booked, invoice.cancelled, invoice.credit, credits))
    return documents, await _payments(api.supplier_invoice_payments(tenant, deadline=deadline))


async def general_ledger(
    api: FortnoxApi, tenant: str, year: FinancialYear, deadline: float | None
) -> dict[Ledger, GeneralLedger]:
    """Each ledger account's opening balance and rows in ``year``, from its SIE 4 export."""
    accounts = {str(a): ledger for ledger, numbers in LEDGER_ACCOUNTS.items() for a in numbers}
    opening = {ledger: Decimal(0) for ledger in LEDGER_ACCOUNTS}
    rows: dict[Ledger, list[LedgerRow]] = {ledger: [] for ledger in LEDGER_ACCOUNTS}
    reader = SieReader()
    async with await api.open_sie_export(tenant, year.id, 4, deadline=deadline) as stream:
        async for chunk in stream:
            for event in reader.feed(chunk):
                _take(event, accounts, opening, rows)
    for event in reader.close():
        _take(event, accounts, opening, rows)
    return {ledger: GeneralLedger(year.from_date, opening[ledger], rows[ledger])
            for ledger in LEDGER_ACCOUNTS}


def _take(event: object, accounts: dict[str, Ledger], opening: dict[Ledger, Decimal],
          rows: dict[Ledger, list[LedgerRow]]) -> None:
    if isinstance(event, Balance):
        if event.kind is BalanceKind.IB and event.year == 0 and event.account in accounts:
            opening[accounts[event.account]] += event.amount
    elif isinstance(event, Voucher):
        for row in event.rows:
            if row.kind is RowKind.TRANS and row.account in accounts:
                rows[accounts[row.account]].append(LedgerRow(
                    f"{event.series}-{event.number}", row.date or event.date, row.amount))
