"""``core.stores.Stores`` on one SQLite file: three connections, each on its own thread.

An import's digests are written in large transactions: with a connection and a thread of
its own, each store's calls never queue behind another store's (a token refresh or an export
claim behind a year's digests); SQLite still takes one writer at a time.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from adapters.sql.statements import STALE_AFTER
from adapters.sqlite.connections import SqliteTokenStore
from adapters.sqlite.exports import SqliteExportHistory
from adapters.sqlite.imports import SqliteImportHistory
from core.clock import Clock, utc_now


class SqliteStores:
    """The token store, the import history and the export history on ``path``."""

    def __init__(
        self,
        path: Path,
        token_key: bytes,
        *,
        clock: Clock = utc_now,
        stale_after: timedelta = STALE_AFTER,
    ) -> None:
        self.tokens = SqliteTokenStore(path, token_key)
        self.imports = SqliteImportHistory(path, clock, stale_after)
        self.exports = SqliteExportHistory(path, clock)

    async def aclose(self) -> None:
        """Closes each store after the calls already queued on it."""
        await self.exports.aclose()
        await self.imports.aclose()
        await self.tokens.aclose()
