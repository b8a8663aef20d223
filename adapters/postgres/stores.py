"""``core.stores.Stores`` on one PostgreSQL database: three stores sharing one pool."""

from __future__ import annotations

from datetime import timedelta

from adapters.postgres.database import PostgresDatabase, open_postgres
from adapters.postgres.exports import PostgresExportHistory
from adapters.postgres.imports import PostgresImportHistory
from adapters.postgres.tokens import PostgresTokenStore
from adapters.sql.statements import STALE_AFTER
from core.clock import Clock, utc_now


class PostgresStores:
    """The token store, the import history and the export history on one pool."""

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
