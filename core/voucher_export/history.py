"""The export record: one row per (tenant, external id), ever, written before each POST.

The row is the idempotency key. ``PENDING`` is written before the POST and means "may have
been created": whoever meets it must look the voucher up by its marker before posting again.

Before a POST the voucher is claimed in the database, atomically, by an owner (one call of one
process) for a lease: while the lease runs nobody else posts it, in any process; a claim whose
lease ran out belongs to a worker that died or hung and may be taken over. Every lease is dated
by the database's clock, never a replica's, so replicas whose clocks disagree still agree on who
holds a voucher.

Each claim carries a fencing token (``Fence``: the owner and a generation the database raises
on every claim): its holder renews the lease while it works and proves right before each POST
that the token is still the voucher's, and every write of the record names the token it was
claimed with. A take-over raises the generation, so the old holder's proof and writes fail
(``ClaimLost``) and it posts nothing more.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

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


class Place(NamedTuple):
    """Where an attempt may have booked a voucher: a series of a financial year."""

    series: str
    financial_year_id: int


class Fence(NamedTuple):
    """A claim's fencing token: who holds it and the generation the claim was given."""

    owner: str
    generation: int


class ClaimLost(Exception):
    """The claim's generation is no longer the voucher's (another worker took it over): its
    holder may neither post nor write the record any more."""


@dataclass(frozen=True)
class Refusal:
    """Why Fortnox did not book a voucher, as its record keeps it: each field is the record's
    column of the same name, so a new one is a field here, a column and a migration."""

    reason: str
    message: str
    fortnox_code: str = ""
    fortnox_message: str = ""


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
    generation: int = 0
    #: Where this attempt and the unsettled ones before it may have booked the voucher (empty
    #: on records written before it was kept).
    places: tuple[Place, ...] = ()

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
    up by its marker (in each of its ``places``) before posting; ``fence`` is then the claim's
    token. When ``SETTLED`` or ``BUSY`` it is the record found; when ``BUSY``, ``retry_after``
    is what is left of the holder's lease and ``held_for`` how long ago it claimed, both by
    the database's clock.
    """

    status: ClaimStatus
    record: ExportRecord | None
    retry_after: timedelta = timedelta(0)
    fence: Fence | None = None
    held_for: timedelta = timedelta(0)


def decided_claim(
    found: ExportRecord | None, request_id: str, owner: str, now: datetime, lease: timedelta
) -> ExportClaim | None:
    """What the record found answers a claim without taking it (``SETTLED``, or ``BUSY``
    under another owner's running lease); ``None`` when the claim may be taken. Every store
    calls this inside the transaction that then writes the claim, with ``now`` read from the
    database's clock in that transaction."""
    if found is None:
        return None
    if found.settles(request_id):
        return ExportClaim(ClaimStatus.SETTLED, found)
    if not found.status.settled and found.owner != owner:
        expires = found.lease_expires_at or found.attempted_at + lease
        if expires > now:
            return ExportClaim(ClaimStatus.BUSY, found, expires - now,
                               held_for=max(now - found.attempted_at, timedelta(0)))
    return None


def claimed(found: ExportRecord | None, owner: str, place: Place) -> tuple[Fence, str]:
    """The token of a claim taken over ``found``, and the places its record keeps: the ones
    an unsettled ``found`` could have booked in, and this attempt's."""
    places = list(found.places if found is not None and not found.status.settled else ())
    if place not in places:
        places.append(place)
    generation = (found.generation if found is not None else 0) + 1
    return Fence(owner, generation), format_places(places)


def format_places(places: list[Place] | tuple[Place, ...]) -> str:
    """Places as the record keeps them: ``series:year`` separated by spaces."""
    return " ".join(f"{p.series}:{p.financial_year_id}" for p in places)


def parse_places(text: str) -> tuple[Place, ...]:
    """The places a record keeps (``format_places``)."""
    return tuple(Place(series, int(year))
                 for series, _, year in (item.rpartition(":") for item in text.split()))


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

    async def get_many(
        self, tenant: str, external_ids: Sequence[str]
    ) -> list[ExportRecord | None]:
        """The records of many vouchers at once, in the order asked (``None``: never
        attempted): a request's look-up before it posts, one read, not one per voucher."""
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
        series: str,
        owner: str,
        lease: timedelta,
    ) -> ExportClaim:
        """Takes the voucher for ``owner`` until the database's now + ``lease``, in one atomic
        step, to be posted into ``series`` of the year.

        ``SETTLED`` when the record ``settles`` the request. ``BUSY`` when another owner's
        unsettled record's lease has not run out. Otherwise (no record, a rejected one, an
        unsettled one of the same owner or with an expired lease) writes the intent
        (``PENDING``, owner, lease, the next generation, the places, see ``claimed``) and
        answers ``TAKEN`` with the record it replaced and the new ``fence``.
        """
        ...

    async def renew(
        self, tenant: str, external_id: str, fence: Fence, lease: timedelta
    ) -> bool:
        """Proves that ``fence`` still holds the voucher's unsettled claim and extends its
        lease to the database's now + ``lease``; ``False`` once another worker took it over
        (or it was settled)."""
        ...

    async def mark_unknown(self, tenant: str, external_id: str, fence: Fence) -> None:
        """Notes that a POST was sent and its answer lost (a ``PENDING`` record only); the
        claim's lease ends with it, as nothing is in flight any more. ``ClaimLost`` when
        ``fence`` no longer holds the record, as for every write below."""
        ...

    async def mark_created(
        self, tenant: str, external_id: str, series: str, number: int, financial_year_id: int,
        fence: Fence,
    ) -> VoucherResult:
        """Stores Fortnox's voucher for the record; returns the stored result."""
        ...

    async def mark_rejected(
        self, tenant: str, external_id: str, refusal: Refusal, fence: Fence
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
