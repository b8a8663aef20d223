"""What the change feed carries: Fortnox's events as received, the book changes a caller reads,
and the tenants being watched."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

#: The topics the holder subscribes to: what moves a year's books.
TOPICS = ("vouchers", "financial-years", "invoices", "supplier-invoices")


class ChangeKind(enum.Enum):
    """What an event says happened to the books."""

    VOUCHER_CREATED = "voucher_created"
    VOUCHER_UPDATED = "voucher_updated"
    VOUCHER_DELETED = "voucher_deleted"
    FINANCIAL_YEAR_CHANGED = "financial_year_changed"
    INVOICE_BOOKED = "invoice_booked"
    INVOICE_PAYMENT = "invoice_payment"
    SUPPLIER_INVOICE_BOOKED = "supplier_invoice_booked"
    SUPPLIER_INVOICE_PAYMENT = "supplier_invoice_payment"
    OTHER = "other"


_KINDS = {
    "voucher-created": ChangeKind.VOUCHER_CREATED,
    "voucher-updated": ChangeKind.VOUCHER_UPDATED,
    "voucher-deleted": ChangeKind.VOUCHER_DELETED,
    "financial-year-created": ChangeKind.FINANCIAL_YEAR_CHANGED,
    "financial-year-updated": ChangeKind.FINANCIAL_YEAR_CHANGED,
    "financial-year-deleted": ChangeKind.FINANCIAL_YEAR_CHANGED,
    "invoice-bookkeep": ChangeKind.INVOICE_BOOKED,
    "invoicepayment-bookkeep": ChangeKind.INVOICE_PAYMENT,
    "invoicepayment-deleted": ChangeKind.INVOICE_PAYMENT,
    "supplier-invoice-bookkeep": ChangeKind.SUPPLIER_INVOICE_BOOKED,
    "supplier-invoice-created": ChangeKind.SUPPLIER_INVOICE_BOOKED,
    "supplier-invoice-updated": ChangeKind.SUPPLIER_INVOICE_BOOKED,
    "supplier-invoice-cancelled": ChangeKind.SUPPLIER_INVOICE_BOOKED,
    "supplierinvoicepayment-bookkeep": ChangeKind.SUPPLIER_INVOICE_PAYMENT,
    "supplier-invoice-payment-bookkeep": ChangeKind.SUPPLIER_INVOICE_PAYMENT,
}


def change_kind(event_type: str) -> ChangeKind:
    """The kind of a versioned event type (``voucher-created-v1``, ``-v2``, ...)."""
    base, _, version = event_type.rpartition("-")
    if not (version.startswith("v") and version[1:].isdigit()):
        base = event_type
    return _KINDS.get(base, ChangeKind.OTHER)


@dataclass(frozen=True)
class FeedEvent:
    """One event as Fortnox sent it. ``offset`` is opaque, ordered within its topic;
    ``fortnox_tenant_id`` is Fortnox's number for the company. Voucher events carry the
    financial year (Fortnox's id), series and number; others leave them 0 and empty."""

    topic: str
    offset: str
    event_type: str
    fortnox_tenant_id: int
    entity_id: str
    occurred_at: datetime
    financial_year_id: int = 0
    voucher_series: str = ""
    voucher_number: int = 0


@dataclass(frozen=True)
class BookChange:
    """A recorded event for one of our tenants, as a caller reads it. ``cursor`` grows with
    every change recorded in the deployment; ``ours`` says the service itself exported the
    voucher (series, number and year match a voucher in the tenant's export history)."""

    cursor: int
    tenant: str
    kind: ChangeKind
    event_type: str
    topic: str
    entity_id: str
    financial_year_id: int
    voucher_series: str
    voucher_number: int
    occurred_at: datetime
    recorded_at: datetime
    ours: bool
    #: A voucher created while an export of the tenant is unsettled: it may be ours, which is
    #: known once the export is recorded; held back from callers until then.
    settling: bool = False


@dataclass(frozen=True)
class YearChanges:
    """What the feed recorded for one financial year of a tenant since a moment: the
    customer's vouchers created, amended or deleted (distinct vouchers; ours left out)."""

    financial_year_id: int
    changed_vouchers: int
    changes: int


class WatchState(enum.Enum):
    """Whether a tenant's changes are being followed."""

    WATCHING = "watching"
    ENDED = "ended"


@dataclass(frozen=True)
class Watch:
    """A tenant the caller asked to follow until ``expires_at``. ``reason`` says why it ended
    (expired, stopped, the connection revoked, the token refused) or what is wrong now while
    it still runs; ``feed_tenant_id`` is the company id the feed answered for its token."""

    tenant: str
    state: WatchState
    reason: str
    expires_at: datetime
    started_at: datetime
    ended_at: datetime | None
    feed_tenant_id: int = 0
    added_at: datetime | None = None


@dataclass(frozen=True)
class WatchTarget:
    """A tenant the holder should have on the feed now (its watch runs and its connection is
    usable), and what the feed knows of it."""

    tenant: str
    feed_tenant_id: int
    token_expires_at: datetime | None
    connection_state: str
    connection_reason: str
