"""The PostgreSQL server's clock, for ``adapters.clock_skew``."""

from __future__ import annotations

from datetime import datetime

from adapters.postgres.database import PostgresDatabase, database_now


class PostgresClock:
    """``adapters.clock_skew.DatabaseTime``: ``clock_timestamp()`` of the server."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def now(self) -> datetime:
        async with self._db.connection() as conn:
            return await database_now(conn)
