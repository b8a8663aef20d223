"""The import history against a real SQLite file."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from adapters.store import open_database
from adapters.store.imports import SqliteImportHistory
from core.errors import InvalidRequest
from core.imports import ImportedYear, ImportKind, ImportStatus, VoucherChanges


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def history(tmp_path: Path, clock: Clock) -> SqliteImportHistory:
    return SqliteImportHistory(open_database(tmp_path / "store.sqlite3"), clock)


def _import_year(
    history: SqliteImportHistory, tenant: str, digests: dict[str, str], year: int = 7
) -> str:
    record = history.start(tenant, ImportKind.SIE, "tester")
    history.stage_voucher_digests(record.import_id, year, digests.items())
    history.add_year(record.import_id, ImportedYear(financial_year_id=year, sha256="abc"))
    return record.import_id


def test_an_import_is_recorded_from_start_to_finish(
    history: SqliteImportHistory, clock: Clock
) -> None:
    record = history.start("acme", ImportKind.LEDGERS, "svc-a", balance_date=date(2025, 12, 31))
    assert record.status is ImportStatus.RUNNING
    year = ImportedYear(financial_year_id=3, start_date=date(2025, 1, 1),
                        end_date=date(2025, 12, 31), sha256="ff", byte_size=10, voucher_count=2,
                        error_count=1, warning_count=4, ledger="customer", open_item_count=9)
    history.add_year(record.import_id, year)
    clock.advance(5)
    history.finish(record.import_id, ImportStatus.FAILED, "FORTNOX_UNAVAILABLE", "no answer")
    stored = history.get("acme", record.import_id)
    assert stored is not None
    assert (stored.status, stored.error_reason, stored.error_message) == (
        ImportStatus.FAILED, "FORTNOX_UNAVAILABLE", "no answer")
    assert stored.years == (year,)
    assert stored.balance_date == date(2025, 12, 31)
    assert stored.finished_at == clock.now
    # A finished import is never reopened or re-finished.
    history.finish(record.import_id, ImportStatus.SUCCEEDED)
    again = history.get("acme", record.import_id)
    assert again is not None and again.status is ImportStatus.FAILED


def test_one_tenant_never_sees_another_tenants_imports(history: SqliteImportHistory) -> None:
    record = history.start("acme", ImportKind.SIE, "x")
    assert history.get("other", record.import_id) is None
    assert history.list_imports("other", None, 10, "").imports == ()


def test_list_pages_newest_first(history: SqliteImportHistory, clock: Clock) -> None:
    ids = []
    for _ in range(5):
        ids.append(history.start("acme", ImportKind.SIE, "x").import_id)
        clock.advance(1)
    history.start("acme", ImportKind.LEDGERS, "x")
    seen, cursor = [], ""
    while True:
        page = history.list_imports("acme", ImportKind.SIE, 2, cursor)
        seen += [r.import_id for r in page.imports]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(ids))


def test_a_foreign_page_token_is_refused(history: SqliteImportHistory) -> None:
    with pytest.raises(InvalidRequest):
        history.list_imports("acme", None, 2, "not-a-token")


def test_changes_are_counted_against_the_last_successful_import(
    history: SqliteImportHistory,
) -> None:
    first = _import_year(history, "acme", {"A-1": "x", "A-2": "y", "A-3": "z"})
    assert history.compare_year("acme", first, 7, "sha-1").previous_import_id is None
    history.finish(first, ImportStatus.SUCCEEDED)

    failed = _import_year(history, "acme", {"A-1": "q"})
    history.finish(failed, ImportStatus.FAILED)  # never becomes the reference

    second = _import_year(history, "acme", {"A-1": "x", "A-2": "changed", "A-4": "new"})
    changes = history.compare_year("acme", second, 7, "sha-2")
    assert (changes.previous_import_id, changes.added, changes.changed, changes.removed) == (
        first, 1, 1, 1)
    assert not changes.other_changed
    assert history.compare_year("other", second, 7, "sha-2").previous_import_id is None


def test_the_same_file_again_is_not_counted_and_an_uncounted_previous_import_is_said_so(
    history: SqliteImportHistory, tmp_path: Path
) -> None:
    first = _import_year(history, "acme", {"A-1": "x"})
    history.finish(first, ImportStatus.SUCCEEDED)
    # Same bytes ("abc", as _import_year records): no counting, whatever was staged.
    same = _import_year(history, "acme", {"A-9": "other"})
    assert history.compare_year("acme", same, 7, "abc") == VoucherChanges(first, "abc", 0, 0, 0)
    history.finish(same, ImportStatus.SUCCEEDED)
    # A previous import whose fingerprints are gone (an older release's, dropped by m004).
    db = open_database(tmp_path / "store.sqlite3")
    db.execute("DELETE FROM voucher_digests")
    db.conn.commit()
    later = _import_year(history, "acme", {"A-1": "x"})
    changes = history.compare_year("acme", later, 7, "def")
    assert (changes.previous_import_id, changes.counted) == (same, False)


def test_imports_of_a_dead_worker_are_failed_after_the_stale_period(
    history: SqliteImportHistory, clock: Clock
) -> None:
    assert history.heartbeat_every_s == 15
    alive = history.start("acme", ImportKind.SIE, "x")
    dead = history.start("acme", ImportKind.SIE, "x")
    clock.advance(50)
    history.heartbeat(alive.import_id)
    clock.advance(30)
    assert history.fail_abandoned() == 1
    states = {r.import_id: r.status for r in history.list_imports("acme", None, 10, "").imports}
    assert states == {alive.import_id: ImportStatus.RUNNING, dead.import_id: ImportStatus.FAILED}
    stored = history.get("acme", dead.import_id)
    assert stored is not None and stored.error_reason == "IMPORT_INTERRUPTED"


def test_fingerprints_that_are_not_vouchers_are_reported_apart(
    history: SqliteImportHistory,
) -> None:
    first = _import_year(history, "acme", {"A-1": "x", "~balances": "b1"})
    history.finish(first, ImportStatus.SUCCEEDED)
    same = _import_year(history, "acme", {"A-1": "x", "~balances": "b1"})
    unchanged = history.compare_year("acme", same, 7, "sha-2")
    assert (unchanged.added, unchanged.changed, unchanged.removed) == (0, 0, 0)
    assert not unchanged.other_changed
    other = _import_year(history, "acme", {"A-1": "x", "~balances": "b2"})
    changed = history.compare_year("acme", other, 7, "sha-3")
    assert (changed.added, changed.changed, changed.removed) == (0, 0, 0)
    assert changed.other_changed


def test_only_the_reference_digests_are_kept(history: SqliteImportHistory, tmp_path: Path) -> None:
    for _ in range(3):
        done = _import_year(history, "acme", {"A-1": "x", "A-2": "y"})
        history.finish(done, ImportStatus.SUCCEEDED)
        history.drop_superseded(done)
    failed = _import_year(history, "acme", {"A-1": "x", "A-2": "y", "A-3": "z"})
    history.finish(failed, ImportStatus.CANCELLED)
    db = open_database(tmp_path / "store.sqlite3")
    rows = db.execute("SELECT import_id, COUNT(*) FROM voucher_digests GROUP BY import_id")
    assert rows.fetchall() == [(done, 2)]
