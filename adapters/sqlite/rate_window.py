"""The rate-limit window in the SQLite file: every process sharing it shares the slots."""

from __future__ import annotations

import asyncio
import json
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

    A claim is one transaction of four statements however many slots it takes, and dating a
    batch of answers one of a single statement: on a loop kept busy by a burst, each statement
    waits for the interpreter lock (a claim of a statement per slot took 0.1 s). The claims
    and datings asked for while one trip to the database's thread is under way go together in
    the next (each still its own transaction): every company's callers are given their slots
    after one wait for the thread, not after one wait each in turn (20 companies starting at
    once waited 5 ms each on a busy event loop)."""

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
                used, oldest_done, last_id = db.execute(
                    "SELECT count(*), min(done_at),"
                    " (SELECT coalesce(max(slot_id), 0) FROM rate_limit_slots)"
                    " FROM rate_limit_slots WHERE company_key = ?",
                    [key],
                ).fetchone()
                free = max(0, min(wanted, limit - used))
                taken: tuple[int, ...] = ()
                if free:
                    # One statement for all the slots, and one to read their ids: what
                    # ``AUTOINCREMENT`` gives is above every id there was, and the write lock
                    # is ours, so the ids above the last are exactly these.
                    db.execute(_INSERT_SLOTS, [free, key, now])
                    taken = tuple(slot_id for (slot_id,) in db.execute(
                        "SELECT slot_id FROM rate_limit_slots WHERE slot_id > ?"
                        " ORDER BY slot_id", [last_id]))
                if len(taken) == wanted:
                    return Claim(taken)
                return Claim(taken, wait_for_free_slot(now, oldest_done, window_s))
        claim: Claim = await self._run(take)
        return claim

    async def finish(self, answered: Sequence[Answered]) -> None:
        def date(db: Database) -> None:
            with immediate(db):
                # Whole microseconds, rounded down: a slot is dated no earlier than its
                # answer came. Taken before the clock: the safe side.
                ages = [[one.slot_id, int(one.age_s() * 1_000_000)] for one in answered]
                db.execute(_DATE_SLOTS, [self._clock(), json.dumps(ages)])
        await self._run(date)


#: ``?1`` slots of company ``?2`` sent at ``?3``, in one statement.
_INSERT_SLOTS = (
    "INSERT INTO rate_limit_slots (company_key, sent_at)"
    " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)"
    " SELECT ?2, ?3 FROM n"
)
#: Dates every slot of the JSON list ``?2`` of ``[slot_id, age in microseconds]`` by the
#: clock ``?1`` less its age, in one statement.
_DATE_SLOTS = (
    "UPDATE rate_limit_slots SET done_at = ?1 - answered.age_us / 1000000.0"
    " FROM (SELECT json_extract(value, '$[0]') AS slot_id,"
    " json_extract(value, '$[1]') AS age_us FROM json_each(?2)) AS answered"
    " WHERE rate_limit_slots.slot_id = answered.slot_id"
)
