"""Reconciliation: the open items against the receivables or payables account at the date.

The difference is explained as far as the books allow: a different opening balance (a
difference carried in from earlier years), vouchers on the ledger account that no invoice or
payment accounts for (booked outside the ledger), and open invoices never booked.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from core.ledgers.model import Document, Ledger, Note, Payment, Reconciliation, sek
from core.ledgers.open_items import open_items

#: The general-ledger account of each ledger (BAS).
LEDGER_ACCOUNTS = {Ledger.CUSTOMER: (1510,), Ledger.SUPPLIER: (2440,)}


@dataclass(frozen=True)
class LedgerRow:
    """A voucher row on a ledger account (debit positive), with its voucher as ``SERIES-NO``."""

    voucher: str
    day: date
    amount: Decimal


@dataclass(frozen=True)
class GeneralLedger:
    """A ledger account's opening balance in the year of the balance date and its rows."""

    year_start: date
    opening: Decimal
    rows: Sequence[LedgerRow]


def reconcile(
    ledger: Ledger,
    documents: Sequence[Document],
    payments: Sequence[Payment],
    general: GeneralLedger,
    balance_date: date,
) -> Reconciliation:
    """Compares the open items at ``balance_date`` with the general ledger and explains why
    they differ (amounts are SEK; payables count as positive amounts owed)."""
    sign = 1 if ledger is Ledger.CUSTOMER else -1
    rows = [r for r in general.rows if general.year_start <= r.day <= balance_date]
    book = sign * (general.opening + sum((r.amount for r in rows), Decimal(0)))
    items, _ = open_items(documents, payments, balance_date)
    before, _ = open_items(documents, payments, general.year_start - timedelta(days=1))
    notes: list[Note] = []
    carried = sign * general.opening - sum((i.open_sek for i in before), Decimal(0))
    if carried:
        notes.append(Note("OPENING_BALANCE_DIFFERENCE",
                          "The opening balance differs from the open items at the year start.",
                          carried))
    expected = _expected(documents, payments, general.year_start, balance_date)
    outside: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        key = (row.day, sign * row.amount)
        if expected[key] > 0:
            expected[key] -= 1
        else:
            outside[row.voucher] += sign * row.amount
    for voucher, amount in sorted(outside.items()):
        if amount:
            notes.append(Note("BOOKED_OUTSIDE_LEDGER",
                              f"Voucher {voucher} is on the ledger account without an invoice "
                              "or payment behind it.", amount, voucher))
    notes += [Note("INVOICE_NOT_BOOKED", f"Invoice {i.document.number} is open but not booked.",
                   -i.open_sek) for i in items if not i.document.booked]
    return Reconciliation(LEDGER_ACCOUNTS[ledger], book,
                          sum((i.open_sek for i in items), Decimal(0)), tuple(notes))


def _expected(
    documents: Iterable[Document], payments: Iterable[Payment], start: date, end: date
) -> Counter[tuple[date, Decimal]]:
    """The (date, amount owed) postings the ledger documents make on the ledger account."""
    booked = {d.number: d for d in documents if d.booked and not d.cancelled}
    expected: Counter[tuple[date, Decimal]] = Counter()
    for doc in booked.values():
        if start <= doc.invoice_date <= end:
            expected[(doc.invoice_date, sek(doc.total, doc.rate))] += 1
    for payment in payments:
        paid = booked.get(payment.document_number)
        if paid is not None and start <= payment.payment_date <= end:
            expected[(payment.payment_date, -sek(payment.amount, paid.rate))] += 1
    return expected
