"""The rate-limit window in the SQLite file: every process on the machine shares its slots."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from adapters.fortnox.limiter import Claim, wait_for_free_slot
from adapters.sqlite_coordination.connection import SqliteConnection

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rate_limit_slots (
    slot_id INTEGER PRIMARY KEY AUTOINCREMENT,
    company_key TEXT NOT NULL,
    sent_at REAL NOT NULL,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS rate_limit_slots_by_company ON rate_limit_slots (company_key, done_at);
"""


class SqliteRateWindow:
    """``adapters.fortnox.limiter.RateWindow`` over a table of slot times per company key,
    claimed inside ``BEGIN IMMEDIATE``; dated by the wall clock the processes share."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._db = SqliteConnection(path, _SCHEMA)
        self._clock = clock

    async def claim(self, key: str, limit: int, window_s: float, stale_after_s: float) -> Claim:
        def work(conn: sqlite3.Connection) -> Claim:
            now = self._clock()
            conn.execute(
                "DELETE FROM rate_limit_slots WHERE company_key = ? AND (done_at <= ?"
                " OR (done_at IS NULL AND sent_at <= ?))",
                (key, now - window_s, now - stale_after_s),
            )
            used, oldest_done = conn.execute(
                "SELECT count(*), min(done_at) FROM rate_limit_slots WHERE company_key = ?",
                (key,),
            ).fetchone()
            if used >= limit:
                return Claim(None, wait_for_free_slot(now, oldest_done, window_s))
            cursor = conn.execute(
                "INSERT INTO rate_limit_slots (company_key, sent_at) VALUES (?, ?)", (key, now)
            )
            assert cursor.lastrowid is not None
            return Claim(cursor.lastrowid)

        return await self._db.write(work)

    async def finish(self, key: str, slot_id: int) -> None:
        now = self._clock()
        await self._db.write(lambda conn: conn.execute(
            "UPDATE rate_limit_slots SET done_at = ? WHERE slot_id = ?", (now, slot_id)
        ))

    def close(self) -> None:
        """Closes the window's connection."""
        self._db.close()
