"""Open items at a balance date, from documents and their payments (the accounting definition:
Fortnox's ``Balance`` is today's, and no endpoint computes it for a past date)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from core.ledgers.model import Document, OpenItem, Payment, sek


def open_items(
    documents: Iterable[Document], payments: Iterable[Payment], balance_date: date
) -> tuple[list[OpenItem], list[Payment]]:
    """The open items at the end of ``balance_date`` and every payment made after it.

    A cancelled document is never open; a document dated after the date is not yet. A credit
    note that names the invoice it credits reduces that invoice from the credit note's date;
    one that names none is an open item of its own (negative).
    """
    docs = [d for d in documents if not d.cancelled]
    by_number = {d.number: d for d in docs}
    paid: dict[str, list[Payment]] = defaultdict(list)
    for payment in payments:
        paid[payment.document_number].append(payment)
    credited: dict[str, Decimal] = defaultdict(Decimal)
    for doc in docs:
        if doc.credit_note and doc.credits in by_number and doc.invoice_date <= balance_date:
            credited[doc.credits] += doc.total
    items: list[OpenItem] = []
    after_all: list[Payment] = []
    for doc in docs:
        if doc.invoice_date > balance_date or (doc.credit_note and doc.credits in by_number):
            continue
        own = sorted(paid.get(doc.number, ()), key=lambda p: (p.payment_date, p.number))
        until = tuple(p for p in own if p.payment_date <= balance_date)
        after = tuple(p for p in own if p.payment_date > balance_date)
        after_all += after
        remaining = doc.total + credited[doc.number] - sum((p.amount for p in until), Decimal(0))
        if remaining == 0:
            continue
        overdue = (balance_date - doc.due_date).days if doc.due_date else 0
        items.append(OpenItem(doc, remaining, sek(remaining, doc.rate), max(0, overdue),
                              until, after))
    items.sort(key=lambda i: (i.document.invoice_date, _number_key(i.document.number)))
    return items, sorted(after_all, key=lambda p: (p.payment_date, _number_key(p.number)))


def _number_key(number: str) -> tuple[int, str]:
    return (int(number), "") if number.isdigit() else (0, number)
