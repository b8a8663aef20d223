"""The voucher export record's contract, against each store backend: request ids, the claim
that keeps every other owner (in any process) from posting, judged by the database's clock
whatever the replicas' clocks say, its fencing token, and the settled answers."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.clock import Clock
from core.errors import RequestIdReused
from core.stores import Stores
from core.voucher_export.history import (
    ClaimLost,
    ClaimStatus,
    ExportClaim,
    ExportHistory,
    ExportStatus,
    Fence,
    Place,
    Refusal,
)
from core.voucher_export.model import Outcome
from tests.adapters.stores.conftest import ManualClock, StoreFactory

LEASE = timedelta(seconds=60)
REFUSAL = Refusal("FORTNOX_REJECTED", "refused", "1", "no")


@pytest.fixture
def history(stores: Stores) -> ExportHistory:
    return stores.exports


async def _take(history: ExportHistory, owner: str, request_id: str = "r1",
                external_id: str = "v1", digest: str = "d1", *, series: str = "I",
                year: int = 3, lease: timedelta = LEASE) -> ExportClaim:
    return await history.claim("t1", external_id, request_id, digest, "fnxb:1", year, "me",
                               series=series, owner=owner, lease=lease)


async def _claim(history: ExportHistory, owner: str, request_id: str = "r1",
                 external_id: str = "v1", digest: str = "d1") -> ClaimStatus:
    return (await _take(history, owner, request_id, external_id, digest)).status


async def _fence(history: ExportHistory, owner: str, **kwargs: Any) -> Fence:
    claim = await _take(history, owner, **kwargs)
    assert claim.status is ClaimStatus.TAKEN and claim.fence is not None
    return claim.fence


async def _taken_once_lease_ends(history: ExportHistory, owner: str, **kwargs: Any
                                 ) -> ExportClaim:
    """The claim ``owner`` takes once the holder's lease has run out by the database's clock
    (polled: the test waits for the condition, not for a time)."""
    deadline = time.monotonic() + 30
    while (claim := await _take(history, owner, **kwargs)).status is ClaimStatus.BUSY:
        assert time.monotonic() < deadline, "the lease never ended"
        await asyncio.sleep(0.05)
    return claim


async def test_request_ids_refuse_other_payloads(history: ExportHistory) -> None:
    rid = str(uuid.uuid4())
    assert await history.open_request("t1", rid, "aaa", "me") is True
    assert await history.open_request("t1", rid, "aaa", "me") is False
    assert await history.request_digest("t1", rid) == "aaa"
    with pytest.raises(RequestIdReused):
        await history.open_request("t1", rid, "bbb", "me")
    assert await history.open_request("t2", rid, "bbb", "me") is True


async def test_intent_survives_the_process_and_settles_once(
    store_factory: StoreFactory, clock: ManualClock
) -> None:
    first = (await store_factory(clock=clock)).exports
    fence = await _fence(first, "a")
    await first.mark_unknown("t1", "v1", fence)
    after_crash = (await store_factory(clock=clock)).exports  # another process
    record = await after_crash.get("t1", "v1")
    assert record is not None
    assert record.status is ExportStatus.UNKNOWN and record.owner == "a"
    assert record.result.financial_year_id == 3 and record.marker == "fnxb:1"
    result = await after_crash.mark_created("t1", "v1", "I", 17, 3, fence)
    assert (result.outcome, result.series, result.number, result.request_id) == (
        Outcome.CREATED, "I", 17, "r1")
    claim = await _take(after_crash, "b", "r2")
    assert claim.status is ClaimStatus.SETTLED  # a created voucher is never reopened
    assert claim.record is not None and claim.record.status is ExportStatus.CREATED
    assert claim.record.result_for("r2").outcome is Outcome.ALREADY_EXPORTED
    assert claim.record.result_for("r1").outcome is Outcome.CREATED


async def test_a_live_claim_keeps_other_owners_out_until_its_lease_ends(
    store_factory: StoreFactory, clock: ManualClock
) -> None:
    one, other = [(await store_factory(clock=clock)).exports for _ in range(2)]
    short = timedelta(seconds=1)
    assert (await _take(one, "a", lease=short)).status is ClaimStatus.TAKEN
    busy = await _take(other, "b", "r2", lease=short)
    assert busy.status is ClaimStatus.BUSY and timedelta(0) < busy.retry_after <= short
    assert busy.record is not None and busy.record.owner == "a"
    assert (await _take(one, "a", lease=short)).status is ClaimStatus.TAKEN  # its own: at once
    # The owner died: its lease ends by the database's clock, and the next one takes over.
    taken = await _taken_once_lease_ends(other, "b", request_id="r2", lease=short)
    assert taken.status is ClaimStatus.TAKEN
    assert taken.record is not None and taken.record.status is ExportStatus.PENDING
    assert taken.record.owner == "a"  # unsettled: the taker must look the voucher up first
    stored = await one.get("t1", "v1")
    assert stored is not None and (stored.owner, stored.request_id) == ("b", "r2")


def _skewed(seconds: float) -> Clock:
    """A replica's clock ``seconds`` away from the true time."""
    return lambda: datetime.now(UTC) + timedelta(seconds=seconds)


@pytest.mark.parametrize(("holder_skew", "taker_skew"), [(-120, 120), (120, -120), (0, 120),
                                                         (-120, 0)])
async def test_skewed_replica_clocks_do_not_change_who_holds_a_claim(
    store_factory: StoreFactory, holder_skew: float, taker_skew: float
) -> None:
    holder = (await store_factory(clock=_skewed(holder_skew))).exports
    taker = (await store_factory(clock=_skewed(taker_skew))).exports
    fence = await _fence(holder, "a")
    busy = await _take(taker, "b", "r2")
    assert busy.status is ClaimStatus.BUSY  # the holder's lease runs, whatever either clock says
    assert timedelta(seconds=55) < busy.retry_after <= LEASE
    assert timedelta(0) <= busy.held_for < timedelta(seconds=5)
    record = await taker.get("t1", "v1")
    assert record is not None and record.lease_expires_at is not None
    now = datetime.now(UTC)  # the database runs on this machine: its clock is this one
    assert now + LEASE - timedelta(seconds=5) < record.lease_expires_at <= now + LEASE
    assert await holder.renew("t1", "v1", fence, LEASE)
    assert (await _take(taker, "b", "r2")).status is ClaimStatus.BUSY
    # A lease that ended by the database's clock ends for every replica alike.
    assert (await _take(holder, "a", external_id="v2", lease=timedelta(seconds=1))
            ).status is ClaimStatus.TAKEN
    taken = await _taken_once_lease_ends(taker, "b", external_id="v2")
    assert taken.record is not None and taken.record.owner == "a"


async def test_a_take_over_fences_the_old_holder_off(
    store_factory: StoreFactory, clock: ManualClock
) -> None:
    one, other = [(await store_factory(clock=clock)).exports for _ in range(2)]
    old = await _fence(one, "a", lease=timedelta(seconds=1))
    assert await one.renew("t1", "v1", old, timedelta(seconds=1))  # it holds it
    taken = await _taken_once_lease_ends(other, "b", request_id="r2")
    assert taken.fence is not None and taken.fence.generation > old.generation
    # The paused holder wakes: its proof fails and none of its writes lands.
    assert not await one.renew("t1", "v1", old, LEASE)
    with pytest.raises(ClaimLost):
        await one.mark_created("t1", "v1", "I", 62, 3, old)
    with pytest.raises(ClaimLost):
        await one.mark_unknown("t1", "v1", old)
    with pytest.raises(ClaimLost):
        await one.mark_rejected("t1", "v1", REFUSAL, old)
    record = await other.get("t1", "v1")
    assert record is not None and record.status is ExportStatus.PENDING
    assert (record.owner, record.generation) == ("b", taken.fence.generation)
    result = await other.mark_created("t1", "v1", "I", 58, 3, taken.fence)
    assert (result.series, result.number, result.request_id) == ("I", 58, "r2")
    with pytest.raises(ClaimLost):  # settled: not even its own holder writes it again
        await other.mark_created("t1", "v1", "I", 59, 3, Fence("b", taken.fence.generation + 1))
    assert not await other.renew("t1", "v1", taken.fence, LEASE)


async def test_the_same_owner_claiming_again_gets_a_new_token(history: ExportHistory) -> None:
    first = await _fence(history, "a")
    await history.mark_unknown("t1", "v1", first)
    second = await _fence(history, "a")
    assert second.generation == first.generation + 1
    with pytest.raises(ClaimLost):
        await history.mark_created("t1", "v1", "I", 1, 3, first)
    assert (await history.mark_created("t1", "v1", "I", 1, 3, second)).number == 1


async def test_a_renewed_lease_runs_from_the_renewal(history: ExportHistory,
                                                     store_factory: StoreFactory) -> None:
    other = (await store_factory()).exports
    short = timedelta(seconds=1)
    fence = await _fence(history, "a", lease=short)
    before = await history.get("t1", "v1")
    assert before is not None and before.lease_expires_at is not None
    deadline = time.monotonic() + 30
    while datetime.now(UTC) <= before.lease_expires_at:  # past the first lease
        assert await history.renew("t1", "v1", fence, LEASE)
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert (await _take(other, "b", "r2")).status is ClaimStatus.BUSY
    after = await history.get("t1", "v1")
    assert after is not None and after.lease_expires_at is not None
    assert after.lease_expires_at > datetime.now(UTC) + LEASE - timedelta(seconds=10)


async def test_the_places_of_unsettled_attempts_are_kept_until_one_settles(
    history: ExportHistory,
) -> None:
    first = await _fence(history, "a", series="I", year=3)
    await history.mark_unknown("t1", "v1", first)
    second = await _fence(history, "b", request_id="r2", series="A", year=3)
    record = await history.get("t1", "v1")
    assert record is not None and record.places == (Place("I", 3), Place("A", 3))
    await history.mark_unknown("t1", "v1", second)
    await _fence(history, "c", request_id="r3", series="A", year=4)
    record = await history.get("t1", "v1")
    assert record is not None
    assert record.places == (Place("I", 3), Place("A", 3), Place("A", 4))
    await history.mark_rejected("t1", "v1", REFUSAL, Fence("c", record.generation))
    await _fence(history, "d", request_id="r4", series="B", year=3)
    record = await history.get("t1", "v1")
    assert record is not None and record.places == (Place("B", 3),)


async def test_a_lost_answer_ends_the_lease(history: ExportHistory) -> None:
    await history.mark_unknown("t1", "v1", await _fence(history, "a"))
    assert await _claim(history, "b", "r2") is ClaimStatus.TAKEN


async def test_rejected_vouchers_keep_fortnox_reason(history: ExportHistory) -> None:
    fence = await _fence(history, "a")
    result = await history.mark_rejected("t1", "v1", Refusal(
        "FORTNOX_REJECTED", "refused", "2000423", "Kan inte hitta kontot."), fence)
    assert (result.outcome, result.fortnox_code, result.fortnox_message) == (
        Outcome.REJECTED, "2000423", "Kan inte hitta kontot.")
    assert await _claim(history, "b") is ClaimStatus.SETTLED  # the same request: its answer
    assert await _claim(history, "b", "r2", digest="d2") is ClaimStatus.TAKEN  # a later one
    record = await history.get("t1", "v1")
    assert record is not None and record.status is ExportStatus.PENDING
    assert record.request_id == "r2" and record.result.fortnox_code == ""


async def test_claims_racing_from_two_processes_are_taken_once_each(
    store_factory: StoreFactory,
) -> None:
    one, other = [(await store_factory()).exports for _ in range(2)]
    ids = [f"v{n}" for n in range(40)]
    results = await asyncio.gather(*(
        _claim(history, owner, external_id=ext)
        for ext in ids for history, owner in ((one, "a"), (other, "b"))))
    per_voucher = [sorted(s.value for s in results[i:i + 2]) for i in range(0, len(results), 2)]
    assert per_voucher == [["busy", "taken"]] * len(ids)


async def test_listing_pages_newest_first_and_filters(
    history: ExportHistory, clock: ManualClock
) -> None:
    for n in range(5):
        await _claim(history, "a", "r1" if n < 3 else "r2", f"v{n}")
        await asyncio.sleep(0.002)  # distinct claim times on SQLite's millisecond clock
    await history.claim("t2", "other", "r1", "d", "m", 3, "me", series="I", owner="a",
                        lease=LEASE)
    page = await history.list_exports("t1", "", "", 2, "")
    seen = [r.external_id for r in page.records]
    while page.next_cursor:
        page = await history.list_exports("t1", "", "", 2, page.next_cursor)
        seen += [r.external_id for r in page.records]
    assert seen == ["v4", "v3", "v2", "v1", "v0"]
    by_request = await history.list_exports("t1", "r2", "", 10, "")
    assert [r.external_id for r in by_request.records] == ["v4", "v3"]
    by_voucher = await history.list_exports("t1", "", "v1", 10, "")
    assert [r.external_id for r in by_voucher.records] == ["v1"]


async def test_many_records_are_read_at_once_in_the_order_asked(history: ExportHistory) -> None:
    for n in range(3):
        await _claim(history, "a", external_id=f"v{n}")
    created = await _fence(history, "a", external_id="v9")
    await history.mark_created("t1", "v9", "I", 7, 3, created)
    await history.claim("t2", "v1", "r1", "d", "m", 3, "me", series="I", owner="a",
                        lease=LEASE)  # another tenant's voucher of the same id
    ids = ["v2", "none", "v9", "v0", "v2"] + [f"x{n}" for n in range(1200)]
    many = await history.get_many("t1", ids)
    assert many == [await history.get("t1", external_id) for external_id in ids]
    assert [r.external_id if r else None for r in many[:5]] == ["v2", None, "v9", "v0", "v2"]
    assert many[2] is not None and many[2].status is ExportStatus.CREATED
    assert (await history.get_many("t1", [])) == []
