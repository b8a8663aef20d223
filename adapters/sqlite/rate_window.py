"""The rate-limit window in the SQLite file: every process sharing it shares the slots."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlite_utils import Database

from adapters.fortnox.limiter import Answered, Claim, wait_for_free_slot
from adapters.sqlite.database import SqliteThread, immediate


class SqliteRateWindow:
    """``adapters.fortnox.limiter.RateWindow`` over ``rate_limit_slots``, claimed inside
    ``BEGIN IMMEDIATE``; dated by the wall clock the processes of one machine share.

    A claim is one transaction however many slots it takes, and so is dating a batch of
    answers."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._thread = SqliteThread(path)
        self._clock = clock

    async def aclose(self) -> None:
        """Closes the connection after the calls already queued."""
        await self._thread.aclose()

    async def claim(
        self, key: str, wanted: int, limit: int, window_s: float, stale_after_s: float
    ) -> Claim:
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
                taken = []
                for _ in range(max(0, min(wanted, limit - used))):
                    cursor = db.execute(
                        "INSERT INTO rate_limit_slots (company_key, sent_at) VALUES (?, ?)",
                        [key, now],
                    )
                    assert cursor.lastrowid is not None
                    taken.append(cursor.lastrowid)
                if len(taken) == wanted:
                    return Claim(tuple(taken))
                return Claim(tuple(taken), wait_for_free_slot(now, oldest_done, window_s))
        return await self._thread.run(take)

    async def finish(self, answered: Sequence[Answered]) -> None:
        def date(db: Database) -> None:
            with immediate(db):
                ages = [one.age_s() for one in answered]  # before the clock: the safe side
                now = self._clock()
                db.conn.executemany(
                    "UPDATE rate_limit_slots SET done_at = ? WHERE slot_id = ?",
                    [(now - age_s, one.slot_id) for one, age_s in zip(answered, ages,
                                                                       strict=True)],
                )
        await self._thread.run(date)
