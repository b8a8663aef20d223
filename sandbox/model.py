"""The records a Fortnox company holds. Money is integer öre (SEK) or integer cents of the
document currency; debit is positive, credit negative, as in SIE."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(slots=True)
class FinancialYear:
    """One financial year; ``id`` is Fortnox's small integer id (1, 2, 3, ...)."""

    id: int
    from_date: date
    to_date: date

    def contains(self, day: date) -> bool:
        """Whether ``day`` falls inside the year."""
        return self.from_date <= day <= self.to_date


@dataclass(slots=True)
class Account:
    """A chart-of-accounts entry (one chart shared by every year of a tenant)."""

    number: int
    description: str
    active: bool = True
    sru: int | None = None
    vat_code: str = ""


@dataclass(slots=True)
class VoucherRow:
    """A voucher row. ``changed_by`` names who corrected the voucher: on a ``removed`` row it
    is a SIE ``#BTRANS``, on a live row an ``#RTRANS`` with its ``#TRANS`` twin."""

    account: int
    amount: int
    description: str = ""
    cost_center: str = ""
    project: str = ""
    transaction_information: str = ""
    quantity: int = 0
    removed: bool = False
    changed_by: str = ""


@dataclass(slots=True)
class Voucher:
    """A voucher, identified by series + number + financial-year id."""

    series: str
    number: int
    year_id: int
    transaction_date: date
    description: str
    rows: list[VoucherRow]
    reg_date: date
    reference_type: str = "MANUAL"
    reference_number: str = ""
    comments: str = ""
    created_via_api: bool = False
    last_modified: datetime | None = None
    deleted: bool = False  # deleted in the sandbox (its number is not given out again)

    def live_rows(self) -> list[VoucherRow]:
        """The rows that count (not removed)."""
        return [row for row in self.rows if not row.removed]


@dataclass(slots=True)
class VoucherSeries:
    """A voucher series; ``Manual`` series accept vouchers typed in by people or the API."""

    code: str
    description: str
    manual: bool = True


@dataclass(slots=True)
class CostCenter:
    """A cost centre (SIE dimension 1)."""

    code: str
    description: str
    active: bool = True


@dataclass(slots=True)
class Project:
    """A project (SIE dimension 6)."""

    number: str
    description: str
    start_date: date
    status: str = "ONGOING"


@dataclass(slots=True)
class Party:
    """A customer or supplier."""

    number: str
    name: str
    organisation_number: str
    city: str
    zip_code: str
    address: str
    email: str
    currency: str = "SEK"
    active: bool = True
    last_modified: datetime | None = None


@dataclass(slots=True)
class VoucherRef:
    """Where a document was booked."""

    series: str
    number: int
    year_id: int


@dataclass(slots=True)
class Payment:
    """A payment of a customer or supplier invoice. ``amount`` is in the invoice currency
    (cents); ``amount_sek`` is what the bank account moved (öre)."""

    number: int
    invoice_number: int
    payment_date: date
    amount: int
    amount_sek: int
    currency: str
    rate: Decimal
    voucher: VoucherRef | None
    last_modified: datetime | None = None


@dataclass(slots=True)
class Invoice:
    """A customer invoice (``kind='customer'``) or supplier invoice (``kind='supplier'``).

    ``total`` and ``vat`` are in the document currency (cents); ``rate`` is SEK per unit.
    A credit note has a negative total and ``credit_of`` set; the invoice it credits lists it
    in ``credited_by``.
    """

    kind: str
    number: int
    party_number: str
    invoice_date: date
    due_date: date
    total: int
    vat: int
    currency: str
    rate: Decimal
    voucher: VoucherRef | None
    external_number: str = ""
    ocr: str = ""
    cancelled: bool = False
    credit_of: int | None = None
    credited_by: int | None = None
    cost_center: str = ""
    project: str = ""
    file_ids: list[str] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    credit_date: date | None = None
    last_modified: datetime | None = None

    def balance_at(self, day: date) -> int:
        """Remaining amount (document currency) at the end of ``day``."""
        if self.cancelled or self.credit_of is not None or self.invoice_date > day:
            return 0
        paid = sum(p.amount for p in self.payments if p.payment_date <= day)
        credited = self.total if self.credit_date is not None and self.credit_date <= day else 0
        return self.total - paid - credited


@dataclass(slots=True)
class StoredFile:
    """A document in the archive or the inbox: a PDF, or a JPEG (a photographed receipt),
    rendered from its title and lines and padded with ``padding`` filler bytes."""

    id: str
    name: str
    folder: str
    title: str
    lines: tuple[str, ...]
    content_type: str = "application/pdf"
    padding: int = 0


@dataclass(frozen=True, slots=True)
class User:
    """Someone who can log in to a company; only a system administrator may give a
    service-account consent."""

    login: str
    name: str
    administrator: bool


@dataclass(slots=True)
class Tenant:
    """A Fortnox company (database); ``id`` is its ``TenantId``. ``planted`` explains any
    deliberate inconsistency."""

    id: int
    database_number: int
    name: str
    organisation_number: str
    address: str
    zip_code: str
    city: str
    years: list[FinancialYear]
    planted: str = ""
    users: tuple[User, ...] = ()

    def user(self, login: str | None) -> User | None:
        """The user with this login, or the administrator when ``login`` is ``None``."""
        for user in self.users:
            if (user.login == login) if login is not None else user.administrator:
                return user
        return None
