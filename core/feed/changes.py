"""What changed in the books, for the caller: the recorded changes of its tenants from a
cursor on, followed live.

Every replica reads the same table, so a consumer sees changes whichever replica recorded them;
a short poll finds new ones (the holder may be another process). A cursor behind what the
sweep deleted is refused: the caller must import again rather than believe it missed nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from core.clock import Clock
from core.errors import CursorExpired
from core.feed.model import BookChange
from core.feed.ports import ChangeStore

#: How many changes one read fetches.
PAGE = 500


class BookChanges:
    """Reads and sweeps the recorded changes."""

    def __init__(self, store: ChangeStore, clock: Clock, *, poll_s: float,
                 retention: timedelta) -> None:
        self._store = store
        self._clock = clock
        self._poll_s = poll_s
        self.retention = retention

    async def follow(self, tenants: Sequence[str], after: int) -> AsyncIterator[BookChange]:
        """The changes of ``tenants`` after cursor ``after``, then each new one as it is
        recorded; ends only when the caller goes away."""
        swept = await self._store.swept_through()
        if 0 < after < swept:
            raise CursorExpired(
                "Changes after that cursor are no longer kept; import again, then follow from"
                " cursor 0.", metadata={"after_cursor": str(after), "kept_after": str(swept)})
        cursor = after
        while True:
            page = await self._store.changes_after(tenants, cursor, PAGE)
            for change in page:
                yield change
                cursor = change.cursor
            if len(page) < PAGE:
                await asyncio.sleep(self._poll_s)

    async def sweep(self) -> int:
        """Deletes the changes older than the retention."""
        return await self._store.sweep(self._clock() - self.retention)
