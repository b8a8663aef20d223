"""The change feed's store on SQLite and PostgreSQL: the holder lease fenced by its generation
and judged by the database's clock, events recorded once per watched tenant with their
offsets, the cursor callers follow, watches and their bounds, the sweep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from adapters.postgres import open_postgres
from adapters.postgres.feed import PostgresFeedStore
from adapters.sqlite.feed import SqliteFeedStore
from core.feed.model import ChangeKind, FeedEvent, WatchState
from core.feed.ports import FeedStore, HolderLost
from tests.adapters.stores.conftest import (
    ManualClock,
    PostgresFactory,
    SqliteFactory,
    StoreFactory,
)

Opener = Callable[[], Awaitable[FeedStore]]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
#: Unsettled exports since then count (none of these tests has one but the one that says so).
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
async def open_feed(store_factory: StoreFactory, clock: ManualClock) -> AsyncIterator[Opener]:
    """Opens the feed store again on the test's database, as another replica would."""
    await store_factory(clock=clock)  # migrates the database
    closers: list[Callable[[], Awaitable[None]]] = []

    async def make() -> FeedStore:
        if isinstance(store_factory, SqliteFactory):
            sqlite = SqliteFeedStore(store_factory.path, clock)
            closers.append(sqlite.aclose)
            return sqlite
        assert isinstance(store_factory, PostgresFactory)
        db = await open_postgres(store_factory.url, max_size=2)
        closers.append(db.close)
        return PostgresFeedStore(db, clock)

    yield make
    for close in closers:
        await close()


def voucher_event(offset: int, company: int, number: int, *, kind: str = "created",
                  year: int = 3, series: str = "A", topic: str = "vouchers") -> FeedEvent:
    return FeedEvent(topic=topic, offset=f"k{offset:08d}", event_type=f"voucher-{kind}-v1",
                     fortnox_tenant_id=company, entity_id=str(number),
                     occurred_at=T0 + timedelta(seconds=offset), financial_year_id=year,
                     voucher_series=series, voucher_number=number)


async def watching(store: FeedStore, clock: ManualClock, *companies: tuple[str, int]) -> None:
    for tenant, company in companies:
        assert await store.start_watch(tenant, clock() + timedelta(days=1), clock(), 100)
        await store.watch_added(tenant, company, clock() + timedelta(hours=1), clock())


async def test_one_holder_at_a_time_and_a_stale_generation_is_refused(open_feed: Opener
                                                                      ) -> None:
    a, b = await open_feed(), await open_feed()
    first = await a.take_holder("a", 30)
    assert first is not None and not first.took_over
    assert await b.take_holder("b", 30) is None
    assert await a.renew_holder(first, 30)
    await a.release_holder(first)
    second = await b.take_holder("b", 30)
    assert second is not None and second.took_over and second.generation > first.generation
    assert not await a.renew_holder(first, 30)
    with pytest.raises(HolderLost):
        await a.record(first, [voucher_event(1, 1001, 1)])
    assert await a.offsets() == {}  # nothing of the refused write is stored
    await b.record(second, [voucher_event(1, 1001, 1)])
    assert await a.offsets() == {"vouchers": "k00000001"}


async def test_an_unrenewed_lease_runs_out_by_the_databases_clock(open_feed: Opener) -> None:
    a, b = await open_feed(), await open_feed()
    first = await a.take_holder("a", 0.3)
    assert first is not None
    give_up = time.monotonic() + 30
    taken = await b.take_holder("b", 30)
    while taken is None and time.monotonic() < give_up:
        await asyncio.sleep(0.1)
        taken = await b.take_holder("b", 30)
    assert taken is not None and taken.took_over
    with pytest.raises(HolderLost):  # the hung holder wakes: its write is refused
        await a.record(first, [voucher_event(1, 1001, 1)])


async def test_events_are_recorded_once_per_watched_tenant_in_cursor_order(
        open_feed: Opener, clock: ManualClock) -> None:
    store = await open_feed()
    await watching(store, clock, ("acme", 1001), ("beta", 1002), ("acme-copy", 1001))
    holding = await store.take_holder("a", 30)
    assert holding is not None
    events = [voucher_event(1, 1001, 10), voucher_event(2, 1002, 20),
              voucher_event(3, 9999, 30),  # a company nobody watches
              voucher_event(1, 1001, 10),  # a duplicate within the batch
              voucher_event(4, 1001, 11, kind="deleted"),
              FeedEvent("financial-years", "k00000007", "financial-year-created-v1", 1002,
                        "4", T0)]
    assert await store.record(holding, events) == 6
    assert await store.offsets() == {"vouchers": "k00000004", "financial-years": "k00000007"}
    assert await store.record(holding, events[:2]) == 0  # delivered again: dropped
    # The offset is the last event received: a late re-delivery sets it back, which only
    # means more is read again after a reconnect (and dropped), never that anything is lost.
    assert (await store.offsets())["vouchers"] == "k00000002"
    changes = await store.changes_after(["acme", "beta"], 0, 100, LONG_AGO)
    assert [(c.tenant, c.voucher_number, c.kind) for c in changes] == [
        ("acme", 10, ChangeKind.VOUCHER_CREATED), ("beta", 20, ChangeKind.VOUCHER_CREATED),
        ("acme", 11, ChangeKind.VOUCHER_DELETED), ("beta", 0, ChangeKind.FINANCIAL_YEAR_CHANGED)]
    cursors = [c.cursor for c in changes]
    assert cursors == sorted(cursors) and len(set(cursors)) == 4
    after_two = await store.changes_after(["acme", "beta"], cursors[1], 100, LONG_AGO)
    assert [c.cursor for c in after_two] == cursors[2:]
    assert len(await store.changes_after(["acme-copy"], 0, 100, LONG_AGO)) == 2
    first = changes[0]
    assert (first.financial_year_id, first.voucher_series, first.entity_id, first.occurred_at
            ) == (3, "A", "10", T0 + timedelta(seconds=1))


async def test_our_exports_are_marked_and_left_out_of_a_years_changes(
        open_feed: Opener, store_factory: StoreFactory, clock: ManualClock) -> None:
    store = await open_feed()
    await watching(store, clock, ("acme", 1001))
    await store_factory.query(
        "INSERT INTO voucher_exports (tenant, external_id, request_id, payload_sha256, marker,"
        " status, voucher_series, voucher_number, financial_year_id, attempted_at)"
        " VALUES ('acme', 'x-1', 'r', 'h', 'm', 'created', 'I', 5, 3, ?)", (clock().isoformat(),))
    holding = await store.take_holder("a", 30)
    assert holding is not None
    since = clock() - timedelta(seconds=1)
    await store.record(holding, [
        voucher_event(1, 1001, 5, series="I"), voucher_event(2, 1001, 7),
        voucher_event(3, 1001, 7, kind="updated"), voucher_event(4, 1001, 8, kind="deleted"),
        voucher_event(5, 1001, 9, year=2)])
    changes = await store.changes_after(["acme"], 0, 100, LONG_AGO)
    assert [c.ours for c in changes] == [True, False, False, False, False]
    years = await store.year_changes("acme", since, [3, 2, 1])
    assert sorted((y.financial_year_id, y.changed_vouchers, y.changes) for y in years) == [
        (2, 1, 1), (3, 2, 3)]
    assert await store.year_changes("acme", clock() + timedelta(seconds=1), [3]) == []


async def test_watches_are_bounded_extended_ended_and_joined_with_their_connection(
        open_feed: Opener, store_factory: StoreFactory, clock: ManualClock) -> None:
    store = await open_feed()
    assert await store.start_watch("acme", clock() + timedelta(hours=1), clock(), 1)
    assert await store.start_watch("beta", clock() + timedelta(hours=1), clock(), 1) is None
    again = await store.start_watch("acme", clock() + timedelta(hours=5), clock(), 1)
    assert again is not None and again.expires_at == clock() + timedelta(hours=5)
    await store_factory.query(
        "INSERT INTO connections (tenant, state, updated_at) VALUES ('acme', 'CONNECTED', ?)",
        (clock().isoformat(),))
    (target,) = await store.watch_targets(clock())
    assert (target.tenant, target.connection_state) == ("acme", "CONNECTED")
    stopped = await store.stop_watch("acme", "Stopped by the caller.", clock())
    assert stopped is not None and stopped.state is WatchState.ENDED
    assert stopped.reason == "Stopped by the caller." and stopped.ended_at == clock()
    assert await store.watch_targets(clock()) == []
    assert await store.start_watch("beta", clock() + timedelta(minutes=1), clock(), 1)
    clock.advance(120)
    assert await store.end_expired_watches(clock()) == ["beta"]
    beta = await store.get_watch("beta")
    assert beta is not None and beta.state is WatchState.ENDED and "expired" in beta.reason
    assert [w.tenant for w in await store.list_watches(None, 10)] == ["acme", "beta"]
    assert [w.tenant for w in await store.list_watches("acme", 10)] == ["beta"]
    assert await store.get_watch("nobody") is None


async def test_the_sweep_deletes_old_changes_and_says_how_far(
        open_feed: Opener, clock: ManualClock) -> None:
    store = await open_feed()
    await watching(store, clock, ("acme", 1001))
    holding = await store.take_holder("a", 30)
    assert holding is not None
    await store.record(holding, [voucher_event(1, 1001, 1), voucher_event(2, 1001, 2)])
    clock.advance(3600)
    await store.record(holding, [voucher_event(3, 1001, 3)])
    old = await store.changes_after(["acme"], 0, 10, LONG_AGO)
    assert await store.swept_through() == 0
    assert await store.sweep(clock() - timedelta(minutes=30)) == 2
    assert await store.swept_through() == old[1].cursor
    kept = await store.changes_after(["acme"], 0, 10, LONG_AGO)
    assert [c.voucher_number for c in kept] == [3]
    assert await store.sweep(clock() - timedelta(minutes=30)) == 0


async def test_a_voucher_created_while_an_export_is_unsettled_is_settling_until_recorded(
        open_feed: Opener, store_factory: StoreFactory, clock: ManualClock) -> None:
    store = await open_feed()
    await watching(store, clock, ("acme", 1001))
    await store_factory.query(
        "INSERT INTO voucher_exports (tenant, external_id, request_id, payload_sha256, marker,"
        " status, attempted_at) VALUES ('acme', 'x-1', 'r', 'h', 'm', 'pending', ?)",
        (clock().isoformat(),))
    holding = await store.take_holder("a", 30)
    assert holding is not None
    await store.record(holding, [voucher_event(1, 1001, 5, series="I"),
                                 voucher_event(2, 1001, 3, kind="updated")])
    since = clock() - timedelta(minutes=1)
    first, amended = await store.changes_after(["acme"], 0, 10, since)
    assert (first.settling, first.ours, amended.settling) == (True, False, False)
    later = clock() + timedelta(minutes=1)  # the claim is older than the settling time
    assert not (await store.changes_after(["acme"], 0, 10, later))[0].settling
    await store_factory.query(
        "UPDATE voucher_exports SET status = 'created', voucher_series = 'I',"
        " voucher_number = 5, financial_year_id = 3")
    first, _ = await store.changes_after(["acme"], 0, 10, since)
    assert (first.settling, first.ours) == (False, True)
