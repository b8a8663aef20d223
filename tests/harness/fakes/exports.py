"""``ExportHistory`` in memory: the export record's contract without a database.

It keeps what the stores' ``export_requests`` and ``voucher_exports`` rows keep, and decides a
claim with the same core functions every store calls inside its transaction
(``decided_claim``, ``claimed``). ``clock`` stands for the database's clock: leases, renewals
and the end of a lost answer's lease are dated by it alone, as the stores date them by the
database's ``now`` (a test moves it to let a lease run out). Every write after a claim is
fenced: it lands only while the record's owner and generation are the fence's, else
``ClaimLost``, as the stores' ``... AND worker_id = ? AND generation = ?`` updates.

For the tests, ``hooks`` run once before a method does its work (to pause a worker, or to let
another one take the claim over, at an exact point), and ``seed`` writes a record as an older
release or a dead worker left it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.clock import Clock, utc_now
from core.voucher_export.history import (
    ClaimLost,
    ClaimStatus,
    ExportClaim,
    ExportPage,
    ExportRecord,
    ExportStatus,
    Fence,
    Place,
    Refusal,
    claimed,
    decided_claim,
    parse_places,
    request_id_reused,
)
from core.voucher_export.model import Outcome, VoucherResult

#: What an unsettled record's result says (the stores' rows make the same texts).
_UNSETTLED_TEXT = {
    ExportStatus.PENDING: ("EXPORT_PENDING", "The voucher was about to be posted."),
    ExportStatus.UNKNOWN: ("FORTNOX_OUTCOME_UNKNOWN", "Fortnox's answer to the POST was lost."),
}
_OUTCOMES = {ExportStatus.CREATED: Outcome.CREATED, ExportStatus.REJECTED: Outcome.REJECTED}

Hook = Callable[[], Awaitable[None]]


@dataclass
class _Row:
    """A ``voucher_exports`` row."""

    tenant: str
    external_id: str
    request_id: str
    payload_sha256: str
    marker: str
    status: ExportStatus
    financial_year_id: int
    requested_by: str
    attempted_at: datetime
    owner: str
    lease_expires_at: datetime | None
    generation: int
    places: str
    voucher_series: str = ""
    voucher_number: int = 0
    reason: str = ""
    message: str = ""
    fortnox_code: str = ""
    fortnox_message: str = ""
    exported_at: datetime | None = None

    def record(self) -> ExportRecord:
        reason, message = _UNSETTLED_TEXT.get(self.status, (self.reason, self.message))
        result = VoucherResult(
            external_id=self.external_id,
            outcome=_OUTCOMES.get(self.status, Outcome.NOT_ATTEMPTED),
            series=self.voucher_series, number=self.voucher_number,
            financial_year_id=self.financial_year_id, reason=reason, message=message,
            fortnox_code=self.fortnox_code, fortnox_message=self.fortnox_message,
            exported_at=self.exported_at, request_id=self.request_id)
        return ExportRecord(
            tenant=self.tenant, external_id=self.external_id, request_id=self.request_id,
            payload_sha256=self.payload_sha256, marker=self.marker, status=self.status,
            result=result, requested_by=self.requested_by, attempted_at=self.attempted_at,
            owner=self.owner, lease_expires_at=self.lease_expires_at,
            generation=self.generation, places=parse_places(self.places))


class MemoryExportHistory:
    """``core.voucher_export.history.ExportHistory`` in dictionaries; see the module."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.requests: dict[tuple[str, str], str] = {}
        self.finished: set[tuple[str, str]] = set()
        self.rows: dict[tuple[str, str], _Row] = {}
        #: Run once, before the named method's work, then forgotten.
        self.hooks: dict[str, Hook] = {}
        #: Every call by method name, in order.
        self.calls: list[str] = []

    async def _enter(self, method: str) -> None:
        self.calls.append(method)
        hook = self.hooks.pop(method, None)
        if hook is not None:
            await hook()

    def seed(self, record: ExportRecord) -> None:
        """Stores ``record`` as it stands (an older release's, a dead worker's)."""
        result = record.result
        self.rows[(record.tenant, record.external_id)] = _Row(
            tenant=record.tenant, external_id=record.external_id, request_id=record.request_id,
            payload_sha256=record.payload_sha256, marker=record.marker, status=record.status,
            financial_year_id=result.financial_year_id, requested_by=record.requested_by,
            attempted_at=record.attempted_at, owner=record.owner,
            lease_expires_at=record.lease_expires_at, generation=record.generation,
            places=" ".join(f"{p.series}:{p.financial_year_id}" for p in record.places),
            voucher_series=result.series, voucher_number=result.number,
            reason=result.reason if record.status.settled else "",
            message=result.message if record.status.settled else "",
            fortnox_code=result.fortnox_code, fortnox_message=result.fortnox_message,
            exported_at=result.exported_at)

    async def open_request(
        self, tenant: str, request_id: str, payload_sha256: str, requested_by: str
    ) -> bool:
        await self._enter("open_request")
        inserted = (tenant, request_id) not in self.requests
        if self.requests.setdefault((tenant, request_id), payload_sha256) != payload_sha256:
            raise request_id_reused(request_id)
        return inserted

    async def request_digest(self, tenant: str, request_id: str) -> str | None:
        await self._enter("request_digest")
        return self.requests.get((tenant, request_id))

    async def finish_request(self, tenant: str, request_id: str) -> None:
        await self._enter("finish_request")
        if (tenant, request_id) in self.requests:
            self.finished.add((tenant, request_id))

    async def get(self, tenant: str, external_id: str) -> ExportRecord | None:
        await self._enter("get")
        row = self.rows.get((tenant, external_id))
        return row.record() if row is not None else None

    async def get_many(
        self, tenant: str, external_ids: Sequence[str]
    ) -> list[ExportRecord | None]:
        await self._enter("get_many")
        rows = [self.rows.get((tenant, external_id)) for external_id in external_ids]
        return [row.record() if row is not None else None for row in rows]

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
        series: str,
        owner: str,
        lease: timedelta,
    ) -> ExportClaim:
        await self._enter("claim")
        now = self.clock()
        row = self.rows.get((tenant, external_id))
        found = row.record() if row is not None else None
        decided = decided_claim(found, request_id, owner, now, lease)
        if decided is not None:
            return decided
        fence, places = claimed(found, owner, Place(series, financial_year_id))
        self.rows[(tenant, external_id)] = _Row(
            tenant=tenant, external_id=external_id, request_id=request_id,
            payload_sha256=payload_sha256, marker=marker, status=ExportStatus.PENDING,
            financial_year_id=financial_year_id, requested_by=requested_by,
            attempted_at=now, owner=owner, lease_expires_at=now + lease,
            generation=fence.generation, places=places)
        return ExportClaim(ClaimStatus.TAKEN, found, fence=fence)

    def _fenced(self, tenant: str, external_id: str, fence: Fence) -> _Row | None:
        row = self.rows.get((tenant, external_id))
        if row is None or (row.owner, row.generation) != tuple(fence):
            return None
        return row

    async def renew(
        self, tenant: str, external_id: str, fence: Fence, lease: timedelta
    ) -> bool:
        await self._enter("renew")
        row = self._fenced(tenant, external_id, fence)
        if row is None or row.status is not ExportStatus.PENDING:
            return False
        row.lease_expires_at = self.clock() + lease
        return True

    async def mark_unknown(self, tenant: str, external_id: str, fence: Fence) -> None:
        await self._enter("mark_unknown")
        row = self._fenced(tenant, external_id, fence)
        if row is None or row.status is not ExportStatus.PENDING:
            raise ClaimLost
        row.status = ExportStatus.UNKNOWN
        row.lease_expires_at = self.clock()

    async def mark_created(
        self, tenant: str, external_id: str, series: str, number: int, financial_year_id: int,
        fence: Fence,
    ) -> VoucherResult:
        await self._enter("mark_created")
        row = self._fenced(tenant, external_id, fence)
        if row is None:
            raise ClaimLost
        row.status = ExportStatus.CREATED
        row.voucher_series, row.voucher_number = series, number
        row.financial_year_id = financial_year_id
        row.exported_at = self.clock()
        row.lease_expires_at = None
        return row.record().result

    async def mark_rejected(
        self, tenant: str, external_id: str, refusal: Refusal, fence: Fence
    ) -> VoucherResult:
        await self._enter("mark_rejected")
        row = self._fenced(tenant, external_id, fence)
        if row is None:
            raise ClaimLost
        row.status = ExportStatus.REJECTED
        row.reason, row.message = refusal.reason, refusal.message
        row.fortnox_code, row.fortnox_message = refusal.fortnox_code, refusal.fortnox_message
        row.lease_expires_at = None
        return row.record().result

    async def list_exports(
        self, tenant: str, request_id: str, external_id: str, limit: int, cursor: str
    ) -> ExportPage:
        """One page of everything matching (the use cases under test never page)."""
        await self._enter("list_exports")
        records = sorted(
            (row.record() for row in self.rows.values() if row.tenant == tenant
             and (not request_id or row.request_id == request_id)
             and (not external_id or row.external_id == external_id)),
            key=lambda r: (r.attempted_at, r.external_id), reverse=True)
        return ExportPage(tuple(records[:limit]), "")

    def record(self, tenant: str, external_id: str) -> ExportRecord | None:
        """The stored record, read without a call (for the test's checks)."""
        row = self.rows.get((tenant, external_id))
        return row.record() if row is not None else None

