"""The export record: one row per (tenant, external id), ever, written before each POST.

The row is the idempotency key. ``PENDING`` is written before the POST and means "may have
been created": whoever meets it must look the voucher up by its marker before posting again.

Before a POST the voucher is claimed in the database, atomically, by an owner (one call of one
process) for a lease: while the lease runs nobody else posts it, in any process; a claim whose
lease ran out belongs to a worker that died and may be taken over.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from core.errors import DomainError, RequestIdReused, StatusCode
from core.voucher_export.model import Outcome, VoucherResult


class ExportStatus(enum.Enum):
    """Where one voucher's export stands."""

    PENDING = "pending"
    UNKNOWN = "unknown"
    CREATED = "created"
    REJECTED = "rejected"

    @property
    def settled(self) -> bool:
        """Whether Fortnox's answer is known."""
        return self in (ExportStatus.CREATED, ExportStatus.REJECTED)


@dataclass(frozen=True)
class ExportRecord:
    """The stored state of one voucher's export."""

    tenant: str
    external_id: str
    request_id: str
    payload_sha256: str
    marker: str
    status: ExportStatus
    result: VoucherResult
    requested_by: str
    attempted_at: datetime
    owner: str
    lease_expires_at: datetime | None

    def settles(self, request_id: str) -> bool:
        """Whether the record answers the request without posting: created by anyone, or
        rejected in this very request (another request may try a rejected voucher again)."""
        if not self.status.settled:
            return False
        return self.result.outcome is not Outcome.REJECTED or self.request_id == request_id

    def result_for(self, request_id: str) -> VoucherResult:
        """The result a request sees: its own stored answer, or "already exported" when
        another request created the voucher."""
        if self.status is ExportStatus.CREATED and self.request_id != request_id:
            return replace(self.result, outcome=Outcome.ALREADY_EXPORTED)
        return self.result


@dataclass(frozen=True)
class ExportPage:
    """A page of export records, newest first, and the cursor of the next one ('' on the last)."""

    records: tuple[ExportRecord, ...]
    next_cursor: str


class ExportInProgress(DomainError):
    """Another worker is exporting the same voucher right now; retry shortly."""

    code = StatusCode.ABORTED
    reason = "EXPORT_IN_PROGRESS"


class ClaimStatus(enum.Enum):
    """What ``ExportHistory.claim`` found."""

    TAKEN = "taken"  # the caller owns the voucher now and may post it (after a look-up)
    SETTLED = "settled"  # the record answers the request: nothing to post
    BUSY = "busy"  # another owner's lease runs: retry after ``retry_after``


@dataclass(frozen=True)
class ExportClaim:
    """The outcome of a claim.

    ``record`` is, when ``TAKEN``, the record the claim replaced (``None`` on a voucher's
    first attempt): if it was unsettled, the voucher may exist in Fortnox and must be looked
    up by its marker before posting. When ``SETTLED`` or ``BUSY`` it is the record found.
    """

    status: ClaimStatus
    record: ExportRecord | None
    retry_after: timedelta = timedelta(0)


def decided_claim(
    found: ExportRecord | None, request_id: str, owner: str, now: datetime, lease: timedelta
) -> ExportClaim | None:
    """What the record found answers a claim without taking it (``SETTLED``, or ``BUSY``
    under another owner's running lease); ``None`` when the claim may be taken. Every store
    calls this inside the transaction that then writes the claim."""
    if found is None:
        return None
    if found.settles(request_id):
        return ExportClaim(ClaimStatus.SETTLED, found)
    if not found.status.settled and found.owner != owner:
        expires = found.lease_expires_at or found.attempted_at + lease
        if expires > now:
            return ExportClaim(ClaimStatus.BUSY, found, expires - now)
    return None


class ExportHistory(Protocol):
    """Where exports are recorded (SQLite or PostgreSQL); every method may raise
    ``StorageUnavailable``."""

    async def open_request(
        self, tenant: str, request_id: str, payload_sha256: str, requested_by: str
    ) -> bool:
        """Records the request; ``False`` if it was recorded before with the same payload.

        Raises ``RequestIdReused`` when the id was used with another payload.
        """
        ...

    async def request_digest(self, tenant: str, request_id: str) -> str | None:
        """The payload digest recorded for a request id, if any."""
        ...

    async def finish_request(self, tenant: str, request_id: str) -> None:
        """Marks the request as answered."""
        ...

    async def get(self, tenant: str, external_id: str) -> ExportRecord | None:
        """The record of a voucher, if it was ever attempted."""
        ...

    async def claim(
        self,
        tenant: str,
        external_id: str,
        request_id: str,
        payload_sha256: str,
        marker: str,
        financial_year_id: int,
        requested_by: str,
        *,
        owner: str,
        lease: timedelta,
    ) -> ExportClaim:
        """Takes the voucher for ``owner`` until now + ``lease``, in one atomic step.

        ``SETTLED`` when the record ``settles`` the request. ``BUSY`` when another owner's
        unsettled record's lease has not run out. Otherwise (no record, a rejected one, an
        unsettled one of the same owner or with an expired lease) writes the intent
        (``PENDING``, owner, lease) and answers ``TAKEN`` with the record it replaced.
        """
        ...

    async def mark_unknown(self, tenant: str, external_id: str) -> None:
        """Notes that a POST was sent and its answer lost (a ``PENDING`` record only); the
        claim's lease ends with it, as nothing is in flight any more."""
        ...

    async def mark_created(
        self, tenant: str, external_id: str, series: str, number: int, financial_year_id: int
    ) -> VoucherResult:
        """Stores Fortnox's voucher for the record; returns the stored result."""
        ...

    async def mark_rejected(
        self, tenant: str, external_id: str, reason: str, message: str, fortnox_code: str,
        fortnox_message: str,
    ) -> VoucherResult:
        """Stores Fortnox's refusal; returns the stored result."""
        ...

    async def list_exports(
        self, tenant: str, request_id: str, external_id: str, limit: int, cursor: str
    ) -> ExportPage:
        """The tenant's records, newest attempt first, optionally of one request or voucher;
        ``InvalidRequest`` for a foreign cursor."""
        ...


def request_id_reused(request_id: str) -> RequestIdReused:
    """The error for a request id that comes back with other vouchers."""
    return RequestIdReused(
        "This request id was used before with different vouchers; use a new request id.",
        metadata={"request_id": request_id},
    )
