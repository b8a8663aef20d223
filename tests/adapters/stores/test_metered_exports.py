"""Claims held, lease take-overs and claims lost to a take-over are counted the same way on
every backend."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from adapters.metered_exports import MeteredExportHistory
from adapters.metrics import CLAIM_KIND
from core.voucher_export.history import ClaimLost, ClaimStatus, ExportClaim, ExportHistory
from tests.adapters.stores.conftest import ManualClock, StoreFactory
from tests.harness.metrics import points, recording_metrics, total

LEASE = timedelta(seconds=60)
SHORT = timedelta(seconds=1)
EXPORT = {CLAIM_KIND: "voucher_export"}


async def _take(history: ExportHistory, owner: str, external_id: str = "v1",
                lease: timedelta = LEASE) -> ExportClaim:
    return await history.claim("t1", external_id, "r1", "d1", "fnxb:1", 3, "me", series="I",
                               owner=owner, lease=lease)


async def _taken_once_lease_ends(history: ExportHistory, owner: str) -> ExportClaim:
    deadline = time.monotonic() + 30
    while (claim := await _take(history, owner)).status is ClaimStatus.BUSY:
        assert time.monotonic() < deadline, "the lease never ended"
        await asyncio.sleep(0.05)
    return claim


async def test_claims_are_held_until_marked_and_a_dead_owners_claim_is_a_take_over(
    store_factory: StoreFactory, clock: ManualClock
) -> None:
    dead = (await store_factory(clock=clock)).exports  # a replica that dies mid-export
    with recording_metrics() as (_, reader):
        metered = MeteredExportHistory((await store_factory(clock=clock)).exports)
        dead_claim = await _take(dead, "a", lease=SHORT)
        assert dead_claim.status is ClaimStatus.TAKEN
        assert (await _take(metered, "b", "v2")).status is ClaimStatus.TAKEN
        own = await _take(metered, "b", "v2")  # its own: held once
        assert own.status is ClaimStatus.TAKEN and own.fence is not None
        assert (await _take(metered, "b")).status is ClaimStatus.BUSY
        held = points(reader)
        assert total(held, "fortnox_bridge.claims.active", EXPORT) == 1
        assert total(held, "fortnox_bridge.claims.lease_takeovers", EXPORT) == 0

        taken = await _taken_once_lease_ends(metered, "b")
        assert taken.fence is not None
        await metered.mark_created("t1", "v2", "I", 1, 3, own.fence)
        await metered.mark_unknown("t1", "v1", taken.fence)
        done = points(reader)
    assert total(done, "fortnox_bridge.claims.active", EXPORT) == 0
    assert total(done, "fortnox_bridge.claims.lease_takeovers", EXPORT) == 1
    assert total(done, "fortnox_bridge.claims.lost", EXPORT) == 0


async def test_a_claim_lost_to_a_take_over_is_counted_once_and_held_no_longer(
    store_factory: StoreFactory,
) -> None:
    with recording_metrics() as (_, reader):
        paused = MeteredExportHistory((await store_factory()).exports)
        other = MeteredExportHistory((await store_factory()).exports)
        mine = await _take(paused, "a", lease=SHORT)
        assert mine.fence is not None
        await _taken_once_lease_ends(other, "b")
        assert not await paused.renew("t1", "v1", mine.fence, LEASE)
        with pytest.raises(ClaimLost):
            await paused.mark_created("t1", "v1", "I", 62, 3, mine.fence)
        lost = points(reader)
    assert total(lost, "fortnox_bridge.claims.lost", EXPORT) == 1
    assert total(lost, "fortnox_bridge.claims.active", EXPORT) == 1  # the other's
