"""The export record: one row per (tenant, external id), ever, written before each POST.

The row is the idempotency key. ``PENDING`` is written before the POST and means "may have
been created": whoever meets it must look the voucher up by its marker before posting again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
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
    worker_id: str

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


class ExportHistory(Protocol):
    """Where exports are recorded (the SQLite store in production)."""

    @property
    def worker_id(self) -> str:
        """This process's id, written on every claim."""
        ...

    def open_request(
        self, tenant: str, request_id: str, payload_sha256: str, requested_by: str
    ) -> bool:
        """Records the request; ``False`` if it was recorded before with the same payload.

        Raises ``RequestIdReused`` when the id was used with another payload.
        """
        ...

    def request_digest(self, tenant: str, request_id: str) -> str | None:
        """The payload digest recorded for a request id, if any."""
        ...

    def finish_request(self, tenant: str, request_id: str) -> None:
        """Marks the request as answered."""
        ...

    def get(self, tenant: str, external_id: str) -> ExportRecord | None:
        """The record of a voucher, if it was ever attempted."""
        ...

    def claim(
        self,
        tenant: str,
        external_id: str,
        request_id: str,
        payload_sha256: str,
        marker: str,
        financial_year_id: int,
        requested_by: str,
    ) -> None:
        """Writes the intent (``PENDING``) before a POST, replacing any unsettled or rejected
        record of the voucher."""
        ...

    def mark_unknown(self, tenant: str, external_id: str) -> None:
        """Notes that a POST was sent and its answer lost."""
        ...

    def mark_created(
        self, tenant: str, external_id: str, series: str, number: int, financial_year_id: int
    ) -> VoucherResult:
        """Stores Fortnox's voucher for the record; returns the stored result."""
        ...

    def mark_rejected(
        self, tenant: str, external_id: str, reason: str, message: str, fortnox_code: str,
        fortnox_message: str,
    ) -> VoucherResult:
        """Stores Fortnox's refusal; returns the stored result."""
        ...

    def list_exports(
        self, tenant: str, request_id: str, external_id: str, limit: int, cursor: str
    ) -> ExportPage:
        """The tenant's records, newest attempt first, optionally of one request or voucher."""
        ...



def request_id_reused(request_id: str) -> RequestIdReused:
    """The error for a request id that comes back with other vouchers."""
    return RequestIdReused(
        "This request id was used before with different vouchers; use a new request id.",
        metadata={"request_id": request_id},
    )
