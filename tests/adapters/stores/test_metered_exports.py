"""Claims held and lease take-overs are counted the same way on every backend."""

from __future__ import annotations

from datetime import timedelta

from adapters.metered_exports import MeteredExportHistory
from adapters.metrics import CLAIM_KIND
from core.voucher_export.history import ClaimStatus, ExportHistory
from tests.adapters.stores.conftest import ManualClock, StoreFactory
from tests.harness.metrics import points, recording_metrics, total

LEASE = timedelta(seconds=60)
EXPORT = {CLAIM_KIND: "voucher_export"}


async def _claim(history: ExportHistory, owner: str, external_id: str = "v1") -> ClaimStatus:
    claim = await history.claim("t1", external_id, "r1", "d1", "fnxb:1", 3, "me",
                                owner=owner, lease=LEASE)
    return claim.status


async def test_claims_are_held_until_marked_and_a_dead_owners_claim_is_a_take_over(
    store_factory: StoreFactory, clock: ManualClock
) -> None:
    dead = (await store_factory(clock=clock)).exports  # a replica that dies mid-export
    with recording_metrics() as (_, reader):
        metered = MeteredExportHistory((await store_factory(clock=clock)).exports)
        assert await _claim(dead, "a") is ClaimStatus.TAKEN
        assert await _claim(metered, "b", "v2") is ClaimStatus.TAKEN
        assert await _claim(metered, "b", "v2") is ClaimStatus.TAKEN  # its own: held once
        assert await _claim(metered, "b") is ClaimStatus.BUSY
        held = points(reader)
        assert total(held, "fortnox_bridge.claims.active", EXPORT) == 1
        assert total(held, "fortnox_bridge.claims.lease_takeovers", EXPORT) == 0

        clock.advance(LEASE.total_seconds())
        assert await _claim(metered, "b") is ClaimStatus.TAKEN
        await metered.mark_created("t1", "v2", "I", 1, 3)
        await metered.mark_unknown("t1", "v1")
        done = points(reader)
    assert total(done, "fortnox_bridge.claims.active", EXPORT) == 0
    assert total(done, "fortnox_bridge.claims.lease_takeovers", EXPORT) == 1
