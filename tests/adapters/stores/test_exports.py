"""The voucher export record's contract, against each store backend: request ids, the claim
that keeps every other owner (in any process) from posting, and the settled answers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from core.errors import RequestIdReused
from core.stores import Stores
from core.voucher_export.history import ClaimStatus, ExportHistory, ExportStatus
from core.voucher_export.model import Outcome
from tests.adapters.stores.conftest import ManualClock, StoreFactory

LEASE = timedelta(seconds=60)


@pytest.fixture
def history(stores: Stores) -> ExportHistory:
    return stores.exports


async def _claim(history: ExportHistory, owner: str, request_id: str = "r1",
                 external_id: str = "v1", digest: str = "d1") -> ClaimStatus:
    claim = await history.claim("t1", external_id, request_id, digest, "fnxb:1", 3, "me",
                                owner=owner, lease=LEASE)
    return claim.status


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
    assert await _claim(first, "a") is ClaimStatus.TAKEN
    await first.mark_unknown("t1", "v1")
    after_crash = (await store_factory(clock=clock)).exports  # another process
    record = await after_crash.get("t1", "v1")
    assert record is not None
    assert record.status is ExportStatus.UNKNOWN and record.owner == "a"
    assert record.result.financial_year_id == 3 and record.marker == "fnxb:1"
    result = await after_crash.mark_created("t1", "v1", "I", 17, 3)
    assert (result.outcome, result.series, result.number, result.request_id) == (
        Outcome.CREATED, "I", 17, "r1")
    claim = await after_crash.claim("t1", "v1", "r2", "d1", "fnxb:1", 3, "me", owner="b",
                                    lease=LEASE)
    assert claim.status is ClaimStatus.SETTLED  # a created voucher is never reopened
    assert claim.record is not None and claim.record.status is ExportStatus.CREATED
    assert claim.record.result_for("r2").outcome is Outcome.ALREADY_EXPORTED
    assert claim.record.result_for("r1").outcome is Outcome.CREATED


async def test_a_live_claim_keeps_other_owners_out_until_its_lease_ends(
    store_factory: StoreFactory, clock: ManualClock
) -> None:
    one, other = [(await store_factory(clock=clock)).exports for _ in range(2)]
    assert await _claim(one, "a") is ClaimStatus.TAKEN
    busy = await other.claim("t1", "v1", "r2", "d1", "fnxb:1", 3, "me", owner="b",
                             lease=LEASE)
    assert busy.status is ClaimStatus.BUSY and busy.retry_after == LEASE
    assert busy.record is not None and busy.record.owner == "a"
    clock.advance(30)
    assert await _claim(one, "a") is ClaimStatus.TAKEN  # its owner may go on at once
    clock.advance(59)
    busy = await other.claim("t1", "v1", "r2", "d1", "fnxb:1", 3, "me", owner="b",
                             lease=LEASE)
    assert busy.status is ClaimStatus.BUSY and busy.retry_after == timedelta(seconds=1)
    clock.advance(1)  # the owner died: its lease ends, and the next one takes over
    taken = await other.claim("t1", "v1", "r2", "d1", "fnxb:1", 3, "me", owner="b",
                              lease=LEASE)
    assert taken.status is ClaimStatus.TAKEN
    assert taken.record is not None and taken.record.status is ExportStatus.PENDING
    assert taken.record.owner == "a"  # unsettled: the taker must look the voucher up first
    stored = await one.get("t1", "v1")
    assert stored is not None and (stored.owner, stored.request_id) == ("b", "r2")


async def test_a_lost_answer_ends_the_lease(history: ExportHistory) -> None:
    assert await _claim(history, "a") is ClaimStatus.TAKEN
    await history.mark_unknown("t1", "v1")
    assert await _claim(history, "b", "r2") is ClaimStatus.TAKEN


async def test_rejected_vouchers_keep_fortnox_reason(history: ExportHistory) -> None:
    assert await _claim(history, "a") is ClaimStatus.TAKEN
    result = await history.mark_rejected("t1", "v1", "FORTNOX_REJECTED", "refused", "2000423",
                                         "Kan inte hitta kontot.")
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
        clock.advance(1)
    await history.claim("t2", "other", "r1", "d", "m", 3, "me", owner="a", lease=LEASE)
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
