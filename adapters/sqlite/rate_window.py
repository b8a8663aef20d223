"""The rate-limit window in the SQLite file: every process sharing it shares the slots."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from adapters.fortnox.limiter import Answered, Claim, wait_for_free_slot
from adapters.sqlite.database import SqliteThread, immediate


class SqliteRateWindow:
    """``adapters.fortnox.limiter.RateWindow`` over ``rate_limit_slots``, claimed inside
    ``BEGIN IMMEDIATE``; dated by the wall clock the processes of one machine share.

    A claim is one transaction however many slots it takes, and so is dating a batch of
    answers. The claims and datings asked for while one trip to the database's thread is
    under way go together in the next (each still its own transaction): every company's
    callers are given their slots after one wait for the thread, not after one wait each in
    turn (20 companies starting at once waited 5 ms each on a busy event loop)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._thread = SqliteThread(path)
        self._clock = clock
        self._queued: list[tuple[Callable[[Database], Any], asyncio.Future[Any]]] = []
        self._running: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        """Closes the connection after the calls already queued."""
        if self._running is not None and not self._running.done():
            await asyncio.gather(self._running, return_exceptions=True)
        await self._thread.aclose()

    async def _run(self, call: Callable[[Database], Any]) -> Any:
        """``call``'s result, run with whatever else is queued in the next trip."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append((call, future))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run_queued())
        return await future

    async def _run_queued(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                outcomes = await self._thread.run_each([call for call, _ in batch])
            except Exception as exc:  # the store is closed: so is every call of the trip
                outcomes = [exc] * len(batch)
            except asyncio.CancelledError:  # the loop is closing: so do the callers' waits
                for _, future in batch + self._queued:
                    future.cancel()
                raise
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # its caller gave up (what it claimed stays until stale)
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

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
        claim: Claim = await self._run(take)
        return claim

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
        await self._run(date)
