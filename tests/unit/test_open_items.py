"""Open items and reconciliation from plain records: part payments, credit notes, cancelled
invoices, foreign currency, payments after the date, a voucher outside the ledger."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from core.ledgers.model import Document, Ledger, Payment
from core.ledgers.open_items import open_items
from core.ledgers.reconciliation import GeneralLedger, LedgerRow, reconcile

D = date(2025, 12, 31)


def _doc(number: str, total: str, day: date = date(2025, 11, 1), *, currency: str = "SEK",
         rate: str = "1", cancelled: bool = False, credits: str = "", booked: bool = True
         ) -> Document:
    return Document(Ledger.CUSTOMER, number, "", "7", "Kund AB", "556000-0001", day,
                    date(2025, 12, 1), Decimal(total), currency, Decimal(rate), booked,
                    cancelled, Decimal(total) < 0, credits)


def _pay(number: str, doc: str, amount: str, day: date, sek: str | None = None) -> Payment:
    return Payment(number, doc, day, Decimal(amount), Decimal(sek or amount))


DOCS = [
    _doc("1", "1000.00"),                                   # part paid before, rest after
    _doc("2", "500.00"),                                    # fully paid before
    _doc("3", "800.00", cancelled=True),                    # never open
    _doc("4", "300.00"),                                    # credited before the date
    _doc("5", "-300.00", date(2025, 11, 20), credits="4"),
    _doc("6", "100.00", currency="EUR", rate="11.2345"),    # foreign, unpaid
    _doc("7", "250.00", date(2026, 1, 3)),                  # dated after the date
]
PAYMENTS = [
    _pay("1", "1", "400.00", date(2025, 12, 10)),
    _pay("2", "1", "600.00", date(2026, 1, 15)),
    _pay("3", "2", "500.00", date(2025, 12, 20)),
]


def test_open_items_at_the_balance_date() -> None:
    items, after = open_items(DOCS, PAYMENTS, D)
    got = {(i.document.number, i.open_amount, i.open_sek, i.days_overdue) for i in items}
    assert got == {("1", Decimal("600.00"), Decimal("600.00"), 30),
                   ("6", Decimal("100.00"), Decimal("1123.45"), 30)}
    first = next(i for i in items if i.document.number == "1")
    assert [p.number for p in first.payments_until] == ["1"]
    assert [p.number for p in first.payments_after] == ["2"]
    assert [p.number for p in after] == ["2"]


def test_a_credit_note_before_the_credit_date_leaves_the_invoice_open() -> None:
    items, _ = open_items(DOCS, PAYMENTS, date(2025, 11, 10))
    assert {i.document.number for i in items} == {"1", "2", "4", "6"}


def test_reconciliation_explains_a_voucher_outside_the_ledger() -> None:
    rows = [LedgerRow("B-1", date(2025, 11, 1), Decimal("1000.00")),
            LedgerRow("B-2", date(2025, 11, 1), Decimal("500.00")),
            LedgerRow("B-3", date(2025, 11, 1), Decimal("300.00")),
            LedgerRow("B-4", date(2025, 11, 20), Decimal("-300.00")),
            LedgerRow("B-5", date(2025, 11, 1), Decimal("1123.45")),
            LedgerRow("C-1", date(2025, 12, 10), Decimal("-400.00")),
            LedgerRow("C-2", date(2025, 12, 20), Decimal("-500.00")),
            LedgerRow("A-9", date(2025, 10, 15), Decimal("1250.00")),
            LedgerRow("C-3", date(2026, 1, 15), Decimal("-600.00"))]
    general = GeneralLedger(date(2025, 1, 1), Decimal("0"), rows)
    result = reconcile(Ledger.CUSTOMER, DOCS, PAYMENTS, general, D)
    assert (result.general_ledger, result.open_items) == (Decimal("2973.45"),
                                                          Decimal("1723.45"))
    assert [(n.code, n.amount, n.voucher) for n in result.notes] == [
        ("BOOKED_OUTSIDE_LEDGER", Decimal("1250.00"), "A-9")]
    assert result.unexplained == 0


def test_a_difference_carried_in_is_explained_by_the_opening_balance() -> None:
    general = GeneralLedger(date(2026, 1, 1), Decimal("2973.45"),
                            [LedgerRow("C-3", date(2026, 1, 15), Decimal("-600.00")),
                             LedgerRow("B-6", date(2026, 1, 3), Decimal("250.00"))])
    result = reconcile(Ledger.CUSTOMER, DOCS, PAYMENTS, general, date(2026, 2, 1))
    assert result.difference == Decimal("1250.00")
    assert [(n.code, n.amount) for n in result.notes] == [
        ("OPENING_BALANCE_DIFFERENCE", Decimal("1250.00"))]
    assert result.unexplained == 0
