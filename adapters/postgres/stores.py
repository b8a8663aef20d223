"""``adapters.backend.Backend`` on one PostgreSQL database: every store sharing one pool."""

from __future__ import annotations

from datetime import timedelta

from adapters.clock_skew import DatabaseClock
from adapters.postgres.clock import PostgresClock
from adapters.postgres.database import PostgresDatabase, open_postgres
from adapters.postgres.exports import PostgresExportHistory
from adapters.postgres.feed import PostgresFeedStore
from adapters.postgres.imports import PostgresImportHistory
from adapters.postgres.job_leases import PostgresJobLeases
from adapters.postgres.rate_window import PostgresRateWindow
from adapters.postgres.tokens import PostgresTokenStore
from adapters.sql.statements import STALE_AFTER
from core.clock import Clock, utc_now


class PostgresStores:
    """The token store, the import and export histories, the rate-limit window, the job
    leases, the change feed's store and the database's clock on one pool."""

    def __init__(
        self,
        db: PostgresDatabase,
        token_key: bytes,
        *,
        clock: Clock = utc_now,
        stale_after: timedelta = STALE_AFTER,
    ) -> None:
        self.db = db
        self.tokens = PostgresTokenStore(db, token_key)
        self.imports = PostgresImportHistory(db, clock, stale_after)
        self.exports = PostgresExportHistory(db, clock)
        self.rate_window = PostgresRateWindow(db)
        self.leases = PostgresJobLeases(db)
        self.feed = PostgresFeedStore(db, clock)
        self.database_time = PostgresClock(db)
        self.database_clock = DatabaseClock()

    @classmethod
    async def open(
        cls, url: str, token_key: bytes, *, pool_size: int = 10, clock: Clock = utc_now,
        stale_after: timedelta = STALE_AFTER,
    ) -> PostgresStores:
        """Opens a pool on ``url`` (migrating the schema) and the stores on it."""
        db = await open_postgres(url, max_size=pool_size)
        return cls(db, token_key, clock=clock, stale_after=stale_after)

    async def aclose(self) -> None:
        """Closes the pool once the calls already running in it have finished."""
        await self.db.close()
