"""What changed in the books, for the caller: the recorded changes of its tenants from a
cursor on, followed live.

Every replica reads the same table, so a consumer sees changes whichever replica recorded them;
a short poll finds new ones (the holder may be another process). A cursor behind what the
sweep deleted is refused: the caller must import again rather than believe it missed nothing.
A voucher created while the tenant has an export claimed but not yet recorded may be that
export's: it is held back (and everything after it, to keep the order) until the export is
recorded or its claim is older than ``export_settles_within``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta

from core.clock import Clock
from core.errors import CursorExpired
from core.feed.model import BookChange, Watch, WatchState, YearChanges
from core.feed.ports import ChangeStore, FeedStore
from core.imports import ImportKind, ImportRecord

#: How many changes one read fetches.
PAGE = 500


async def changed_since_imports(
    store: FeedStore, records: Sequence[ImportRecord]
) -> list[Mapping[int, YearChanges] | None]:
    """Per import, what the feed recorded in each of its years since it started (a year that is
    absent did not change), where that is known: a SIE import whose tenant has been watched
    since before it started; ``None`` elsewhere."""
    watches: dict[str, Watch | None] = {}
    known: list[Mapping[int, YearChanges] | None] = []
    for record in records:
        if record.kind is not ImportKind.SIE or not record.years:
            known.append(None)
            continue
        if record.tenant not in watches:
            watches[record.tenant] = await store.get_watch(record.tenant)
        watch = watches[record.tenant]
        if (watch is None or watch.state is not WatchState.WATCHING
                or watch.started_at > record.started_at):
            known.append(None)
            continue
        found = await store.year_changes(
            record.tenant, record.started_at, [y.financial_year_id for y in record.years])
        known.append({y.financial_year_id: y for y in found})
    return known


class BookChanges:
    """Reads and sweeps the recorded changes."""

    def __init__(self, store: ChangeStore, clock: Clock, *, poll_s: float,
                 retention: timedelta, export_settles_within: timedelta) -> None:
        self._store = store
        self._clock = clock
        self._poll_s = poll_s
        self.retention = retention
        self._settle = export_settles_within

    async def follow(self, tenants: Sequence[str], after: int, *, live: bool = True
                     ) -> AsyncIterator[BookChange]:
        """The changes of ``tenants`` after cursor ``after``, then (``live``) each new one as
        it is recorded, until the caller goes away; else it ends once caught up."""
        swept = await self._store.swept_through()
        if 0 < after < swept:
            raise CursorExpired(
                "Changes after that cursor are no longer kept; import again, then follow from"
                " cursor 0.", metadata={"after_cursor": str(after), "kept_after": str(swept)})
        cursor = after
        while True:
            page = await self._store.changes_after(tenants, cursor, PAGE,
                                                   self._clock() - self._settle)
            held = False
            for change in page:
                if change.settling:  # it may be ours: wait until the export is recorded
                    held = True
                    break
                yield change
                cursor = change.cursor
            if held or len(page) < PAGE:
                if not live and not held:
                    return
                await asyncio.sleep(self._poll_s)

    async def sweep(self) -> int:
        """Deletes the changes older than the retention."""
        return await self._store.sweep(self._clock() - self.retention)
