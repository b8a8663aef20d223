"""``adapters.backend.Backend`` on one SQLite file: each store on a connection and a thread of
its own.

An import's digests are written in large transactions: with a connection and a thread of
its own, each store's calls never queue behind another store's (a token refresh or an export
claim behind a year's digests); SQLite still takes one writer at a time.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from adapters.clock_skew import DatabaseClock
from adapters.sql.statements import STALE_AFTER
from adapters.sqlite.clock import SqliteClock
from adapters.sqlite.connections import SqliteTokenStore
from adapters.sqlite.exports import SqliteExportHistory
from adapters.sqlite.feed import SqliteFeedStore
from adapters.sqlite.imports import SqliteImportHistory
from adapters.sqlite.job_leases import SqliteJobLeases
from adapters.sqlite.rate_window import SqliteRateWindow
from core.clock import Clock, utc_now


class SqliteStores:
    """The token store, the import and export histories, the rate-limit window, the job
    leases, the change feed's store and the database's clock on ``path``."""

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
        self.rate_window = SqliteRateWindow(path)
        self.leases = SqliteJobLeases(path)
        self.feed = SqliteFeedStore(path, clock)
        self.database_time = SqliteClock(path)
        self.database_clock = DatabaseClock()

    async def aclose(self) -> None:
        """Closes each store after the calls already queued on it."""
        await self.database_time.aclose()
        await self.feed.aclose()
        await self.leases.aclose()
        await self.rate_window.aclose()
        await self.exports.aclose()
        await self.imports.aclose()
        await self.tokens.aclose()
