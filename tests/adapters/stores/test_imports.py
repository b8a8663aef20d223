"""The import history's contract, against each store backend."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from core.clock import utc_now
from core.errors import ImportInterrupted, InvalidRequest
from core.imports import (
    ChangeKind,
    ImportedYear,
    ImportHistory,
    ImportKind,
    ImportStatus,
    VoucherChanges,
    record_success,
)
from core.stores import Stores
from core.voucher_digest import DigestBatch, voucher_digest
from tests.adapters.stores.conftest import ManualClock, SqliteFactory, StoreFactory


@pytest.fixture
def history(stores: Stores) -> ImportHistory:
    return stores.imports


def _batch(digests: dict[str, str], start: int = 0) -> DigestBatch:
    """The fingerprints of texts, by key."""
    return DigestBatch.of(((k, voucher_digest(t)) for k, t in digests.items()), start)


async def _import_year(
    history: ImportHistory, tenant: str, digests: dict[str, str], year: int = 7
) -> str:
    record = await history.start(tenant, ImportKind.SIE, "tester")
    await history.stage_voucher_digests(record.import_id, year, _batch(digests))
    await history.add_year(record.import_id, ImportedYear(financial_year_id=year, sha256="abc"))
    return record.import_id


async def test_an_import_is_recorded_from_start_to_finish(
    history: ImportHistory, clock: ManualClock
) -> None:
    record = await history.start("acme", ImportKind.LEDGERS, "svc-a",
                                 balance_date=date(2025, 12, 31))
    assert record.status is ImportStatus.RUNNING
    year = ImportedYear(financial_year_id=3, start_date=date(2025, 1, 1),
                        end_date=date(2025, 12, 31), sha256="ff", byte_size=10, voucher_count=2,
                        error_count=1, warning_count=4, ledger="customer", open_item_count=9)
    await history.add_year(record.import_id, year)
    clock.advance(5)
    await history.finish(record.import_id, ImportStatus.FAILED, "FORTNOX_UNAVAILABLE", "no answer")
    stored = await history.get("acme", record.import_id)
    assert stored is not None
    assert (stored.status, stored.error_reason, stored.error_message) == (
        ImportStatus.FAILED, "FORTNOX_UNAVAILABLE", "no answer")
    assert stored.years == (year,)
    assert stored.balance_date == date(2025, 12, 31)
    assert stored.finished_at == clock.now
    # A finished import is never reopened or re-finished.
    await history.finish(record.import_id, ImportStatus.SUCCEEDED)
    again = await history.get("acme", record.import_id)
    assert again is not None and again.status is ImportStatus.FAILED


async def test_one_tenant_never_sees_another_tenants_imports(history: ImportHistory) -> None:
    record = await history.start("acme", ImportKind.SIE, "x")
    assert await history.get("other", record.import_id) is None
    assert (await history.list_imports("other", None, 10, "")).imports == ()


async def test_list_pages_newest_first(history: ImportHistory, clock: ManualClock) -> None:
    ids = []
    for _ in range(5):
        ids.append((await history.start("acme", ImportKind.SIE, "x")).import_id)
        clock.advance(1)
    await history.start("acme", ImportKind.LEDGERS, "x")
    seen, cursor = [], ""
    while True:
        page = await history.list_imports("acme", ImportKind.SIE, 2, cursor)
        seen += [r.import_id for r in page.imports]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(ids))


async def test_a_foreign_page_token_is_refused(history: ImportHistory) -> None:
    with pytest.raises(InvalidRequest):
        await history.list_imports("acme", None, 2, "not-a-token")


async def test_changes_are_counted_against_the_last_successful_import(
    history: ImportHistory,
) -> None:
    first = await _import_year(history, "acme", {"A-1": "x", "A-2": "y", "A-3": "z"})
    assert (await history.compare_year("acme", first, 7, "sha-1")).previous_import_id is None
    await history.finish(first, ImportStatus.SUCCEEDED)

    failed = await _import_year(history, "acme", {"A-1": "q"})
    await history.finish(failed, ImportStatus.FAILED)  # never becomes the reference

    second = await _import_year(history, "acme", {"A-1": "x", "A-2": "changed", "A-4": "new"})
    changes = await history.compare_year("acme", second, 7, "sha-2")
    assert (changes.previous_import_id, changes.added, changes.changed, changes.removed) == (
        first, 1, 1, 1)
    assert not changes.other_changed
    assert (await history.compare_year("other", second, 7, "sha-2")).previous_import_id is None


async def test_the_same_file_again_is_not_counted_and_an_uncounted_previous_import_is_said_so(
    history: ImportHistory, store_factory: StoreFactory
) -> None:
    first = await _import_year(history, "acme", {"A-1": "x"})
    await history.finish(first, ImportStatus.SUCCEEDED)
    # Same bytes ("abc", as _import_year records): no counting, whatever was staged.
    same = await _import_year(history, "acme", {"A-9": "other"})
    unchanged = await history.compare_year("acme", same, 7, "abc")
    assert unchanged == VoucherChanges(first, "abc", 0, 0, 0)
    await history.finish(same, ImportStatus.SUCCEEDED)
    # A previous import whose fingerprints are gone (an older release's, dropped by m004).
    await store_factory.query("DELETE FROM voucher_digest_batches")
    later = await _import_year(history, "acme", {"A-1": "x"})
    changes = await history.compare_year("acme", later, 7, "def")
    assert (changes.previous_import_id, changes.counted) == (same, False)


async def test_imports_of_a_dead_worker_are_failed_after_the_stale_period(
    store_factory: StoreFactory,
) -> None:
    assert (await store_factory()).imports.heartbeat_every_s == 15
    history = (await store_factory(stale_after=timedelta(seconds=2))).imports
    assert history.heartbeat_every_s == 0.5
    alive = await history.start("acme", ImportKind.SIE, "x")
    dead = await history.start("acme", ImportKind.SIE, "x")
    swept = await _sweep_until_failed(history, dead.import_id, alive.import_id)
    assert swept == 1
    page = await history.list_imports("acme", None, 10, "")
    states = {r.import_id: r.status for r in page.imports}
    assert states == {alive.import_id: ImportStatus.RUNNING, dead.import_id: ImportStatus.FAILED}
    stored = await history.get("acme", dead.import_id)
    assert stored is not None and stored.error_reason == "IMPORT_INTERRUPTED"
    assert await history.heartbeat(alive.import_id)
    assert not await history.heartbeat(dead.import_id)  # its worker learns it was swept


async def _sweep_until_failed(history: ImportHistory, dead: str, alive: str) -> int:
    """Sweeps (the live import signalling right before each sweep) until ``dead`` is failed;
    how many the sweeps failed in all."""
    swept = 0
    for _ in range(400):
        assert await history.heartbeat(alive)
        swept += await history.fail_abandoned()
        record = await history.get("acme", dead)
        if record is not None and record.status is ImportStatus.FAILED:
            return swept
        await asyncio.sleep(0.05)
    raise AssertionError("the dead import was never swept")


@pytest.mark.parametrize("skew_s", [-120, 120])
async def test_a_replica_whose_clock_is_off_sweeps_no_live_import(
    store_factory: StoreFactory, skew_s: int
) -> None:
    """Heartbeats and sweeps are dated by the database's clock: an import signalling every
    15 s is never swept by a replica two minutes fast, nor one started by a replica two
    minutes slow; a dead one is still swept after the stale period."""
    normal = (await store_factory(clock=utc_now)).imports
    skewed = (await store_factory(clock=lambda: utc_now() + timedelta(seconds=skew_s))).imports
    live_here = await normal.start("acme", ImportKind.SIE, "x")
    live_there = await skewed.start("acme", ImportKind.SIE, "x")
    await normal.stage_voucher_digests(live_here.import_id, 7, _batch({"A-1": "x"}))
    await normal.heartbeat(live_here.import_id)
    await skewed.heartbeat(live_there.import_id)
    assert await skewed.fail_abandoned() == 0
    assert await normal.fail_abandoned() == 0
    for record in (live_here, live_there):
        stored = await normal.get("acme", record.import_id)
        assert stored is not None and stored.status is ImportStatus.RUNNING
    assert await normal.finish(live_here.import_id, ImportStatus.SUCCEEDED)
    assert await record_success(skewed, live_there.import_id) is None
    staged = await store_factory.query("SELECT voucher_keys FROM voucher_digest_batches")
    assert staged == [("A-1",)]


async def test_an_import_swept_while_it_ran_is_not_reported_as_a_success(
    history: ImportHistory, store_factory: StoreFactory
) -> None:
    record = await history.start("acme", ImportKind.SIE, "x")
    await history.stage_voucher_digests(record.import_id, 7, _batch({"A-1": "x"}))
    await store_factory.query(  # what a sweep of another replica did while it ran
        "UPDATE imports SET status = 'failed', error_reason = 'IMPORT_INTERRUPTED'")
    with pytest.raises(ImportInterrupted) as caught:
        await record_success(history, record.import_id)
    assert caught.value.reason == "IMPORT_INTERRUPTED"
    assert not await history.finish(record.import_id, ImportStatus.SUCCEEDED)
    stored = await history.get("acme", record.import_id)
    assert stored is not None and stored.status is ImportStatus.FAILED


async def test_fingerprints_that_are_not_vouchers_are_reported_apart(
    history: ImportHistory,
) -> None:
    first = await _import_year(history, "acme", {"A-1": "x", "~balances": "b1"})
    await history.finish(first, ImportStatus.SUCCEEDED)
    same = await _import_year(history, "acme", {"A-1": "x", "~balances": "b1"})
    unchanged = await history.compare_year("acme", same, 7, "sha-2")
    assert (unchanged.added, unchanged.changed, unchanged.removed) == (0, 0, 0)
    assert not unchanged.other_changed
    other = await _import_year(history, "acme", {"A-1": "x", "~balances": "b2"})
    changed = await history.compare_year("acme", other, 7, "sha-3")
    assert (changed.added, changed.changed, changed.removed) == (0, 0, 0)
    assert changed.other_changed


async def test_only_the_reference_digests_are_kept(
    history: ImportHistory, store_factory: StoreFactory
) -> None:
    for _ in range(3):
        done = await _import_year(history, "acme", {"A-1": "x", "A-2": "y"})
        await history.finish(done, ImportStatus.SUCCEEDED)
        await history.drop_superseded(done)
    failed = await _import_year(history, "acme", {"A-1": "x", "A-2": "y", "A-3": "z"})
    await history.finish(failed, ImportStatus.CANCELLED)
    rows = await store_factory.query(
        "SELECT import_id, SUM(length(digests)) / 16 FROM voucher_digest_batches"
        " GROUP BY import_id")
    assert rows == [(done, 2)]


#: ``voucher_digests`` as every release before the digest batches (m011 / 008) kept it.
_OLD_DIGESTS = (
    "CREATE TABLE voucher_digests (import_id TEXT NOT NULL, financial_year_id INTEGER NOT NULL,"
    " voucher_key TEXT NOT NULL, digest TEXT NOT NULL,"
    " PRIMARY KEY (import_id, financial_year_id, voucher_key))")


async def test_an_import_made_before_the_digest_batches_is_compared_after_the_migration(
    store_factory: StoreFactory,
) -> None:
    history = (await store_factory()).imports
    before = await history.start("acme", ImportKind.SIE, "tester")
    for year in (7, 8):
        await history.add_year(before.import_id,
                               ImportedYear(financial_year_id=year, sha256=f"old-{year}"))
    await history.finish(before.import_id, ImportStatus.SUCCEEDED)
    # The database as the release before the migration left it: a row per fingerprint, hex.
    sqlite = isinstance(store_factory, SqliteFactory)
    await store_factory.query("DROP TABLE voucher_digest_batches")
    await store_factory.query(_OLD_DIGESTS)
    await store_factory.query(
        "DELETE FROM _sqlite_migrations WHERE name = 'm011_voucher_digest_batches'" if sqlite
        else "DELETE FROM schema_migrations WHERE name = '008_voucher_digest_batches'")
    texts = {"A:1": "#VER A 1", "A:2": "#VER A 2", "B:1": "#VER B 1", "~balances": "ib"}
    for key, text in texts.items():
        await store_factory.query("INSERT INTO voucher_digests VALUES (?, ?, ?, ?)",
                                  (before.import_id, 7, key, voucher_digest(text).hex()))
    await store_factory.query("INSERT INTO voucher_digests VALUES (?, ?, ?, ?)",
                              (before.import_id, 8, "A:1", "not a digest of this release"))

    after = (await store_factory()).imports  # opening the store migrates it
    assert await store_factory.query("SELECT * FROM voucher_digest_batches WHERE"
                                     " financial_year_id = 8") == []

    async def compared(year: int, sha256: str, now: dict[str, str]) -> VoucherChanges:
        record = await after.start("acme", ImportKind.SIE, "tester")
        await after.stage_voucher_digests(record.import_id, year, _batch(now))
        changes = await after.compare_year("acme", record.import_id, year, sha256)
        await after.finish(record.import_id, ImportStatus.CANCELLED)
        return changes

    same_bytes = await compared(7, "old-7", texts)
    assert same_bytes.kind("old-7") is ChangeKind.UNCHANGED
    same_vouchers = await compared(7, "other bytes", texts)
    assert same_vouchers.kind("other bytes") is ChangeKind.UNCHANGED
    assert same_vouchers.counted and same_vouchers.previous_import_id == before.import_id
    edited = await compared(7, "edited", {**texts, "A:2": "#VER A 2 edited", "C:1": "#VER C 1"})
    assert (edited.added, edited.changed, edited.removed, edited.other_changed) == (1, 1, 0, False)
    assert edited.kind("edited") is ChangeKind.CHANGED
    fewer = await compared(7, "fewer", {"A:1": "#VER A 1", "~balances": "ub"})
    assert (fewer.added, fewer.changed, fewer.removed, fewer.other_changed) == (0, 0, 2, True)
    # A year whose old fingerprints were not of this release's shape: not known, not wrong.
    unknown = await compared(8, "new-8", {"A:1": "#VER A 1"})
    assert unknown.kind("new-8") is ChangeKind.UNKNOWN
