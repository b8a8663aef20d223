"""How a claim is decided from the record found, the rule every store applies inside its
transaction (``decided_claim``): settled answers, another owner's running lease, and what may
be taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.voucher_export.history import ClaimStatus, ExportRecord, ExportStatus, decided_claim
from core.voucher_export.model import Outcome, VoucherResult

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def _record(status: ExportStatus, owner: str = "a", *, request_id: str = "r1",
            lease_ends: datetime | None = NOW + LEASE, attempted: datetime = NOW
            ) -> ExportRecord:
    outcome = {ExportStatus.CREATED: Outcome.CREATED,
               ExportStatus.REJECTED: Outcome.REJECTED}.get(status, Outcome.NOT_ATTEMPTED)
    return ExportRecord("t", "v", request_id, "d", "m", status,
                        VoucherResult("v", outcome, request_id=request_id), "me", attempted,
                        owner, lease_ends)


@pytest.mark.parametrize(("found", "owner", "request_id", "decided"), [
    (None, "a", "r1", None),  # a first attempt
    (_record(ExportStatus.CREATED), "b", "r2", ClaimStatus.SETTLED),  # created by anyone
    (_record(ExportStatus.REJECTED), "b", "r1", ClaimStatus.SETTLED),  # refused in this request
    (_record(ExportStatus.REJECTED), "b", "r2", None),  # a later request tries again
    (_record(ExportStatus.PENDING), "b", "r2", ClaimStatus.BUSY),  # another owner's lease runs
    (_record(ExportStatus.PENDING), "a", "r1", None),  # its own claim: at once
    (_record(ExportStatus.UNKNOWN, lease_ends=NOW - timedelta(seconds=1)), "b", "r2", None),
    (_record(ExportStatus.PENDING, lease_ends=NOW), "b", "r2", None),  # ends now: over
    # A record from before leases were stored: its claim time plus the lease.
    (_record(ExportStatus.PENDING, lease_ends=None, attempted=NOW - timedelta(seconds=59)),
     "b", "r2", ClaimStatus.BUSY),
    (_record(ExportStatus.PENDING, lease_ends=None, attempted=NOW - timedelta(seconds=61)),
     "b", "r2", None),
])
def test_what_a_claim_finds(found: ExportRecord | None, owner: str, request_id: str,
                            decided: ClaimStatus | None) -> None:
    claim = decided_claim(found, request_id, owner, NOW, LEASE)
    assert (claim.status if claim is not None else None) is decided


def test_a_busy_claim_says_how_long_the_lease_runs_and_since_when_it_is_held() -> None:
    found = _record(ExportStatus.PENDING, lease_ends=NOW + timedelta(seconds=45),
                    attempted=NOW - timedelta(seconds=15))
    claim = decided_claim(found, "r2", "b", NOW, LEASE)
    assert claim is not None and claim.record is found
    assert (claim.retry_after, claim.held_for) == (timedelta(seconds=45), timedelta(seconds=15))
