"""A held voucher claim renews its lease while its holder waits, and its proof fails once the
claim was taken over (a fake history: only the claim's own logic is tested here)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from core.errors import StorageUnavailable
from core.voucher_export.held_claim import HeldClaim
from core.voucher_export.history import ClaimLost, ExportHistory, Fence

FENCE = Fence("me", 3)


class Renewals:
    """The history's ``renew``: counts calls; answers ``held`` (or raises ``failing``)."""

    def __init__(self, target: int = 1) -> None:
        self.calls = 0
        self.held = True
        self.failing: Exception | None = None
        self.target = target
        self.reached = asyncio.Event()  # set once ``target`` renewals were asked for

    async def renew(self, tenant: str, external_id: str, fence: Fence, lease: timedelta
                    ) -> bool:
        assert (tenant, external_id, fence) == ("t", "v", FENCE)
        self.calls += 1
        if self.calls >= self.target:
            self.reached.set()
        if self.failing is not None:
            raise self.failing
        return self.held


def _held(renewals: Renewals, lease_s: float) -> HeldClaim:
    history: Any = renewals  # only ``renew`` is used
    history_port: ExportHistory = history
    return HeldClaim(history_port, "t", "v", FENCE, timedelta(seconds=lease_s))


async def test_the_lease_is_renewed_while_the_holder_waits_longer_than_it() -> None:
    renewals = Renewals(target=4)
    held = _held(renewals, 0.3)
    async with held.kept():  # a wait of several leases: renewed every third of one
        await asyncio.wait_for(renewals.reached.wait(), 30)
    calls = renewals.calls
    await asyncio.sleep(0.3)
    assert renewals.calls == calls  # no renewal once the claim is let go
    await held.still_held()


async def test_a_claim_taken_over_fails_its_proof_and_is_renewed_no_more() -> None:
    renewals = Renewals()
    held = _held(renewals, 60)
    renewals.held = False
    with pytest.raises(ClaimLost):
        await held.still_held()
    assert held.lost and not await held.renew()
    assert renewals.calls == 1  # lost for good: not asked again


async def test_a_failed_renewal_does_not_end_the_work_the_proof_decides() -> None:
    renewals = Renewals(target=2)
    renewals.failing = StorageUnavailable("down")
    held = _held(renewals, 0.15)
    async with held.kept():
        await asyncio.wait_for(renewals.reached.wait(), 30)
    renewals.failing = None
    await held.still_held()


async def test_a_claim_found_lost_in_the_background_is_renewed_no_more() -> None:
    renewals = Renewals(target=1)
    renewals.held = False
    held = _held(renewals, 0.15)
    async with held.kept():
        await asyncio.wait_for(renewals.reached.wait(), 30)
        await asyncio.sleep(0.2)  # several renewal periods
        assert held.lost and renewals.calls == 1
    with pytest.raises(ClaimLost):
        await held.still_held()
    assert renewals.calls == 1
