"""What the use cases read from and write to a tenant's Fortnox company: records and the port.

Money is ``Decimal`` in the document's currency (SEK unless ``currency`` says otherwise), dates
are ``datetime.date`` (``None`` where Fortnox sends an empty string). Every call names the
tenant; the adapter finds, refreshes and uses that tenant's tokens, keeps within the rate
limit and retries reads. ``deadline`` is a ``time.monotonic()`` instant (the RPC's deadline):
no retry starts after it.

Errors are the domain errors of ``core.errors``: ``ConnectionNotFound``, ``ReconnectRequired``,
``ConnectionRevoked``, and the ``FortnoxError`` leaves (Fortnox's code and message are in
``metadata["fortnox_code"]`` and ``metadata["fortnox_message"]``).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

#: Awaited right before a write leaves for Fortnox; raises to stop it (a voucher's claim that
#: must still be held).
Proof = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class CompanyInformation:
    """The Fortnox company behind a tenant's tokens."""

    company_name: str
    organisation_number: str
    database_number: int | None
    address: str
    zip_code: str
    city: str
    country_code: str


@dataclass(frozen=True)
class FinancialYear:
    """A Fortnox financial year; ``id`` is what ``financialyear=`` parameters take."""

    id: int
    from_date: date
    to_date: date
    account_chart_type: str
    accounting_method: str

    def contains(self, day: date) -> bool:
        """Whether ``day`` falls inside the year."""
        return self.from_date <= day <= self.to_date


@dataclass(frozen=True)
class Account:
    """An account of a year's chart. ``balance_carried_forward`` only on a single lookup."""

    number: int
    description: str
    active: bool
    balance_brought_forward: Decimal
    balance_carried_forward: Decimal | None
    sru: int | None
    vat_code: str
    year: int | None
    #: ``ALLOWED``, ``MANDATORY`` or ``NOTALLOWED``: whether rows give a cost centre/project.
    cost_center_settings: str = "ALLOWED"
    project_settings: str = "ALLOWED"


@dataclass(frozen=True)
class VoucherSeries:
    """A voucher series (``next_voucher_number`` only on a single lookup)."""

    code: str
    description: str
    manual: bool
    year: int | None
    next_voucher_number: int | None = None


@dataclass(frozen=True)
class CostCenter:
    """A cost centre (SIE dimension 1); rows may name only active ones."""

    code: str
    description: str
    active: bool


@dataclass(frozen=True)
class Project:
    """A project (SIE dimension 6); ``status`` is ``NOTSTARTED``, ``ONGOING`` or
    ``COMPLETED``, and a completed project takes no more rows."""

    number: str
    description: str
    status: str

    @property
    def active(self) -> bool:
        """Whether rows may still name the project."""
        return self.status.upper() != "COMPLETED"


@dataclass(frozen=True)
class VoucherRow:
    """One row of a voucher: either ``debit`` or ``credit`` is non-zero."""

    account: int
    debit: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)
    description: str = ""
    transaction_information: str = ""
    cost_center: str = ""
    project: str = ""
    removed: bool = False


@dataclass(frozen=True)
class Voucher:
    """A booked voucher, identified by ``series`` + ``number`` + ``year`` (the year's id).

    Vouchers from a list carry no rows (Fortnox lists none); a single lookup does.
    """

    series: str
    number: int
    year: int
    transaction_date: date | None
    description: str
    comments: str = ""
    reference_number: str = ""
    reference_type: str = ""
    rows: tuple[VoucherRow, ...] = ()


@dataclass(frozen=True)
class NewVoucher:
    """A voucher to create. Put the export marker in ``comments`` (or ``description``) so
    ``find_vouchers`` can find it when the outcome of the create is unknown."""

    series: str
    transaction_date: date
    description: str
    rows: tuple[VoucherRow, ...]
    comments: str = ""


@dataclass(frozen=True)
class Customer:
    """A customer (``active``/``currency`` are unknown, ``None``/``""``, in list answers)."""

    customer_number: str
    name: str
    organisation_number: str
    active: bool | None = None
    currency: str = ""


@dataclass(frozen=True)
class Supplier:
    """A supplier."""

    supplier_number: str
    name: str
    organisation_number: str
    active: bool | None = None
    currency: str = ""


@dataclass(frozen=True)
class Invoice:
    """A customer invoice. ``total``/``balance`` are in ``currency``; ``balance`` is what is
    left today. ``credit`` and ``credit_invoice_reference`` are known only from a single
    lookup (``None``/``""`` from lists); a credit note has a negative total."""

    document_number: str
    customer_number: str
    customer_name: str
    invoice_date: date | None
    due_date: date | None
    final_pay_date: date | None
    total: Decimal
    balance: Decimal
    currency: str
    currency_rate: Decimal
    booked: bool
    cancelled: bool
    invoice_type: str = ""
    ocr: str = ""
    credit: bool | None = None
    credit_invoice_reference: str = ""
    organisation_number: str = ""


@dataclass(frozen=True)
class InvoicePayment:
    """A payment of a customer invoice. ``amount`` is SEK; ``amount_currency`` the invoice
    currency's amount where Fortnox gives it (single lookups only)."""

    number: str
    invoice_number: str
    amount: Decimal
    currency: str
    currency_rate: Decimal
    payment_date: date | None
    booked: bool
    amount_currency: Decimal | None = None


@dataclass(frozen=True)
class SupplierInvoice:
    """A supplier invoice, keyed by Fortnox's ``given_number``; ``invoice_number`` is the
    supplier's own number. ``credit_reference`` only from a single lookup."""

    given_number: str
    supplier_number: str
    supplier_name: str
    invoice_number: str
    invoice_date: date | None
    due_date: date | None
    final_pay_date: date | None
    total: Decimal
    balance: Decimal
    currency: str
    currency_rate: Decimal
    booked: bool
    cancelled: bool
    credit: bool
    credit_reference: str = ""
    ocr: str = ""


@dataclass(frozen=True)
class SupplierInvoicePayment:
    """A payment of a supplier invoice; ``invoice_number`` is the invoice's given number."""

    number: str
    invoice_number: str
    amount: Decimal
    currency: str
    currency_rate: Decimal
    payment_date: date | None
    booked: bool
    amount_currency: Decimal | None = None


@dataclass(frozen=True)
class FileConnection:
    """A file attached to a supplier invoice or to a voucher (the other side's fields empty)."""

    file_id: str
    name: str = ""
    supplier_invoice_number: str = ""
    voucher_series: str = ""
    voucher_number: int | None = None
    voucher_year: int | None = None


class FileSource(enum.Enum):
    """Which kind of id names a file (needs the ``archive`` or ``inbox`` scope):
    ``ARCHIVE``/``INBOX`` the file's ``Id`` in that folder, ``CONNECTION`` the ``FileId`` of
    a file connection (Fortnox's ``ArchiveFileId``, fetched with ``/3/archive?fileid=``)."""

    ARCHIVE = "archive"
    INBOX = "inbox"
    CONNECTION = "connection"


class InvoiceFilter(enum.Enum):
    """Fortnox's ``filter=`` on invoice lists (``PENDING_PAYMENT``/``AUTHORIZE_PENDING``
    only for supplier invoices)."""

    CANCELLED = "cancelled"
    FULLY_PAID = "fullypaid"
    UNPAID = "unpaid"
    UNPAID_OVERDUE = "unpaidoverdue"
    UNBOOKED = "unbooked"
    PENDING_PAYMENT = "pendingpayment"
    AUTHORIZE_PENDING = "authorizepending"


class ByteStream(Protocol):
    """A download in progress: iterate it for chunks as they arrive; ``aclose`` (or leaving
    ``async with``) closes the HTTP response. A connection lost mid-body raises
    ``FortnoxUnavailable`` from the iteration."""

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` Fortnox sent (without parameters)."""
        ...

    @property
    def file_name(self) -> str:
        """The file name from ``Content-Disposition``, or a name derived from the request."""
        ...

    @property
    def content_length(self) -> int | None:
        """The announced size in bytes, when Fortnox sent one."""
        ...

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive."""
        ...

    async def aclose(self) -> None:
        """Stops the download and closes the response (idempotent)."""
        ...

    async def __aenter__(self) -> ByteStream:
        """Returns the stream itself."""
        ...

    async def __aexit__(self, *exc_info: object) -> None:
        """Closes the stream."""
        ...


class FortnoxApi(Protocol):
    """The reads and the one write the use cases make against a tenant's Fortnox company.

    Methods returning ``AsyncIterator`` walk Fortnox's pages lazily (``limit=500``); the next
    page is fetched only when the previous one is consumed.
    """

    async def company_information(
        self, tenant: str, *, deadline: float | None = None
    ) -> CompanyInformation:
        """The company the tenant is connected to."""
        ...

    async def financial_years(
        self, tenant: str, *, deadline: float | None = None
    ) -> list[FinancialYear]:
        """Every financial year, oldest first."""
        ...

    async def financial_year_for_date(
        self, tenant: str, day: date, *, deadline: float | None = None
    ) -> FinancialYear | None:
        """The year containing ``day``, or ``None``."""
        ...

    async def accounts(
        self, tenant: str, financial_year_id: int, *, deadline: float | None = None
    ) -> list[Account]:
        """The whole chart of accounts of a year (all pages)."""
        ...

    async def voucher_series(
        self, tenant: str, financial_year_id: int, *, deadline: float | None = None
    ) -> list[VoucherSeries]:
        """The voucher series of a year."""
        ...

    async def locked_period_end(
        self, tenant: str, *, deadline: float | None = None
    ) -> date | None:
        """The last locked date (needs the ``settings`` scope), ``None`` if nothing is locked."""
        ...

    async def cost_centers(
        self, tenant: str, *, deadline: float | None = None
    ) -> list[CostCenter]:
        """Every cost centre (needs the ``costcenter`` scope)."""
        ...

    async def projects(self, tenant: str, *, deadline: float | None = None) -> list[Project]:
        """Every project (needs the ``project`` scope)."""
        ...

    async def voucher(
        self,
        tenant: str,
        financial_year_id: int,
        series: str,
        number: int,
        *,
        deadline: float | None = None,
    ) -> Voucher:
        """One voucher with its rows; ``FortnoxNotFound`` if it does not exist."""
        ...

    def vouchers(
        self,
        tenant: str,
        financial_year_id: int,
        *,
        series: str | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[Voucher]:
        """A year's vouchers (of one series if given), without rows."""
        ...

    async def find_vouchers(
        self,
        tenant: str,
        financial_year_id: int,
        marker: str,
        *,
        series: str | None = None,
        deadline: float | None = None,
    ) -> list[Voucher]:
        """The year's vouchers whose description or comments contain ``marker``."""
        ...

    async def create_voucher(
        self,
        tenant: str,
        financial_year_id: int,
        voucher: NewVoucher,
        *,
        deadline: float | None = None,
        proof: Proof | None = None,
    ) -> Voucher:
        """Books ``voucher`` in the year; never retried once sent.

        A lost answer, or one that does not show the voucher asked for (a success without it,
        with an error in it, unreadable, too large or too slow), raises
        ``FortnoxOutcomeUnknown``: the voucher may exist; look it up with ``find_vouchers``
        before creating it again. A 429 or a refused connection (the request never reached
        Fortnox) is retried safely. ``proof`` is awaited right before each attempt leaves
        (after the waits for a token and a rate-limit slot); what it raises stops the call
        before anything is sent.
        """
        ...

    def customers(
        self, tenant: str, *, deadline: float | None = None
    ) -> AsyncIterator[Customer]:
        """Every customer."""
        ...

    def suppliers(
        self, tenant: str, *, deadline: float | None = None
    ) -> AsyncIterator[Supplier]:
        """Every supplier."""
        ...

    def invoices(
        self,
        tenant: str,
        *,
        filter: InvoiceFilter | None = None,
        from_date: date | None = None,
        to_date: date | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[Invoice]:
        """Customer invoices (invoice date within ``from_date``..``to_date`` if given)."""
        ...

    async def invoice(
        self, tenant: str, document_number: str, *, deadline: float | None = None
    ) -> Invoice:
        """One customer invoice, with ``credit`` and ``credit_invoice_reference``."""
        ...

    def invoice_payments(
        self, tenant: str, *, deadline: float | None = None
    ) -> AsyncIterator[InvoicePayment]:
        """Every customer invoice payment."""
        ...

    def supplier_invoices(
        self,
        tenant: str,
        *,
        filter: InvoiceFilter | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[SupplierInvoice]:
        """Supplier invoices."""
        ...

    async def supplier_invoice(
        self, tenant: str, given_number: str, *, deadline: float | None = None
    ) -> SupplierInvoice:
        """One supplier invoice, with ``credit_reference`` and ``ocr``."""
        ...

    def supplier_invoice_payments(
        self, tenant: str, *, deadline: float | None = None
    ) -> AsyncIterator[SupplierInvoicePayment]:
        """Every supplier invoice payment."""
        ...

    def supplier_invoice_file_connections(
        self, tenant: str, *, deadline: float | None = None
    ) -> AsyncIterator[FileConnection]:
        """Files attached to supplier invoices."""
        ...

    def voucher_file_connections(
        self,
        tenant: str,
        *,
        financial_year_id: int | None = None,
        series: str | None = None,
        number: int | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[FileConnection]:
        """Files attached to vouchers (needs the ``connectfile`` scope), narrowed by Fortnox
        to a year, a series and a number when given (callers filter again: Fortnox may apply
        only one filter per request)."""
        ...

    async def open_file(
        self,
        tenant: str,
        file_id: str,
        source: FileSource = FileSource.ARCHIVE,
        *,
        deadline: float | None = None,
    ) -> ByteStream:
        """Starts downloading an archive or inbox file (needs the ``archive`` or ``inbox``
        scope; without it ``FortnoxScopeMissing`` with ``metadata["scope"]``)."""
        ...

    async def open_invoice_pdf(
        self, tenant: str, document_number: str, *, deadline: float | None = None
    ) -> ByteStream:
        """Starts downloading an invoice's PDF (``/preview``: does not mark it sent)."""
        ...

    async def open_sie_export(
        self,
        tenant: str,
        financial_year_id: int,
        sie_type: int = 4,
        *,
        deadline: float | None = None,
    ) -> ByteStream:
        """Starts downloading a year's SIE file; chunks are the original bytes (CP437)."""
        ...
