"""The rate-limit window in the SQLite file: every process sharing it shares the slots."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from adapters.fortnox.limiter import Claim, wait_for_free_slot
from adapters.sqlite.database import SqliteThread, immediate


class SqliteRateWindow:
    """``adapters.fortnox.limiter.RateWindow`` over ``rate_limit_slots``, claimed inside
    ``BEGIN IMMEDIATE``; dated by the wall clock the processes of one machine share."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._thread = SqliteThread(path)
        self._clock = clock

    async def aclose(self) -> None:
        """Closes the connection after the calls already queued."""
        await self._thread.aclose()

    async def claim(self, key: str, limit: int, window_s: float, stale_after_s: float) -> Claim:
        def take(db: Database) -> Claim:
            with immediate(db):
                now = self._clock()
                db.execute(
                    "DELETE FROM rate_limit_slots WHERE company_key = ? AND (done_at <= ?"
                    " OR (done_at IS NULL AND sent_at <= ?))",
                    [key, now - window_s, now - stale_after_s],
                )
                used, oldest_done = db.execute(
                    "SELECT count(*), min(done_at) FROM rate_limit_slots WHERE company_key = ?",
                    [key],
                ).fetchone()
                if used >= limit:
                    return Claim(None, wait_for_free_slot(now, oldest_done, window_s))
                cursor = db.execute(
                    "INSERT INTO rate_limit_slots (company_key, sent_at) VALUES (?, ?)",
                    [key, now],
                )
                assert cursor.lastrowid is not None
                return Claim(cursor.lastrowid)
        return await self._thread.run(take)

    async def finish(self, key: str, slot_id: int) -> None:
        await self._thread.run(lambda db: db.execute(
            "UPDATE rate_limit_slots SET done_at = ? WHERE slot_id = ?", [self._clock(), slot_id]
        ))
