"""The customer and supplier ledgers at a balance date, as plain records.

Amounts are ``Decimal`` in their currency (``*_sek`` in SEK). Supplier amounts are what is
owed, so both ledgers show an open invoice as a positive amount.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from core.money import to_kronor, to_ore


class Ledger(enum.Enum):
    """Which sub-ledger."""

    CUSTOMER = "customer"
    SUPPLIER = "supplier"


def sek(amount: Decimal, rate: Decimal) -> Decimal:
    """A currency amount in SEK at ``rate``, to the öre."""
    return to_kronor(to_ore(amount * rate))


@dataclass(frozen=True)
class Payment:
    """A payment of a ledger document: ``amount`` in the document's currency."""

    number: str
    document_number: str
    payment_date: date
    amount: Decimal
    amount_sek: Decimal


@dataclass(frozen=True)
class Document:
    """A customer or supplier invoice (or credit note), normalised across both ledgers.

    ``credits`` is the document number a credit note credits, when known.
    """

    ledger: Ledger
    number: str
    invoice_number: str
    counterparty_number: str
    counterparty_name: str
    organisation_number: str
    invoice_date: date
    due_date: date | None
    total: Decimal
    currency: str
    rate: Decimal
    booked: bool
    cancelled: bool
    credit_note: bool
    credits: str = ""


@dataclass(frozen=True)
class OpenItem:
    """A document with a remaining balance at the balance date."""

    document: Document
    open_amount: Decimal
    open_sek: Decimal
    days_overdue: int
    payments_until: tuple[Payment, ...]
    payments_after: tuple[Payment, ...]

    @property
    def total_sek(self) -> Decimal:
        """The document total in SEK at its own rate."""
        return sek(self.document.total, self.document.rate)


@dataclass(frozen=True)
class Note:
    """One explained part of a reconciliation difference (SEK)."""

    code: str
    message: str
    amount: Decimal
    voucher: str = ""


@dataclass(frozen=True)
class Reconciliation:
    """Open items versus the general ledger's accounts at the balance date (SEK)."""

    accounts: tuple[int, ...]
    general_ledger: Decimal
    open_items: Decimal
    notes: tuple[Note, ...] = ()

    @property
    def difference(self) -> Decimal:
        """General ledger minus open items."""
        return self.general_ledger - self.open_items

    @property
    def unexplained(self) -> Decimal:
        """The part of the difference no note explains."""
        return self.difference - sum((n.amount for n in self.notes), Decimal(0))


@dataclass(frozen=True)
class LedgerTotals:
    """The totals of one ledger at the balance date."""

    ledger: Ledger
    items: tuple[OpenItem, ...]
    payments_after: tuple[Payment, ...]
    reconciliation: Reconciliation | None = None
    balance_date: date = field(default=date.min)

    @property
    def open_total_sek(self) -> Decimal:
        """The sum of the open items in SEK."""
        return sum((i.open_sek for i in self.items), Decimal(0))

    @property
    def overdue_count(self) -> int:
        """Open items past their due date."""
        return sum(1 for i in self.items if i.days_overdue > 0)
