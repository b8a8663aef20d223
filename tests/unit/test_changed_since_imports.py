"""Whether GetImport/ListImports may say what changed in an imported year: only where the feed
has followed the tenant since before the import started (core.feed.changes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from core.feed.changes import changed_since_imports
from core.feed.model import Watch, WatchState, YearChanges
from core.imports import ImportedYear, ImportKind, ImportRecord, ImportStatus

T0 = datetime(2026, 12, 1, tzinfo=UTC)


class _Store:
    """The two reads of a feed store the decision makes, counted."""

    def __init__(self, watch: Watch | None) -> None:
        self.watch = watch
        self.watch_reads = 0

    async def get_watch(self, tenant: str) -> Watch | None:
        self.watch_reads += 1
        return self.watch

    async def year_changes(self, tenant: str, since: datetime,
                           financial_year_ids: Sequence[int]) -> list[YearChanges]:
        return [YearChanges(7, 3, 4)] if since < T0 + timedelta(hours=5) else []


def _import(started: datetime, kind: ImportKind = ImportKind.SIE) -> ImportRecord:
    return ImportRecord("i", "acme", kind, ImportStatus.SUCCEEDED, "me", started, None, "", "",
                        (ImportedYear(financial_year_id=7), ImportedYear(financial_year_id=8)),
                        None)


def _watch(started: datetime, state: WatchState = WatchState.WATCHING) -> Watch:
    return Watch("acme", state, "", T0 + timedelta(days=30), started, None)


async def test_years_of_an_import_made_while_watched_tell_what_changed() -> None:
    store = _Store(_watch(T0))
    known = await changed_since_imports(
        store, [_import(T0 + timedelta(hours=1)), _import(T0 + timedelta(hours=9))])
    assert known == [{7: YearChanges(7, 3, 4)}, {}]
    assert store.watch_reads == 1  # one tenant's listing reads its watch once


async def test_nothing_is_said_where_the_feed_did_not_follow_the_whole_time() -> None:
    later = _Store(_watch(T0 + timedelta(hours=2)))  # the watch began after the import
    ended = _Store(_watch(T0, WatchState.ENDED))
    none = _Store(None)
    imported = _import(T0 + timedelta(hours=1))
    for store in (later, ended, none):
        assert await changed_since_imports(store, [imported]) == [None]
    ledgers = _import(T0 + timedelta(hours=1), ImportKind.LEDGERS)
    assert await changed_since_imports(_Store(_watch(T0)), [ledgers]) == [None]
