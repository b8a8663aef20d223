"""SQLite's clock, for ``adapters.clock_skew`` (the machine's, which every process sharing
the file shares: only an injected or broken clock differs from it)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from adapters.sqlite.database import SqliteThread, database_now


class SqliteClock:
    """``adapters.clock_skew.DatabaseTime``: SQLite's ``'now'``."""

    def __init__(self, path: Path) -> None:
        self._thread = SqliteThread(path)

    async def aclose(self) -> None:
        """Closes the connection after the calls already queued."""
        await self._thread.aclose()

    async def now(self) -> datetime:
        return await self._thread.run(database_now)
