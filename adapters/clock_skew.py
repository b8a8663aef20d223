"""How far this replica's clock is from the database's, watched so that an operator sees it.

Leases, claims and sweeps are judged by the database's clock, so a replica's clock being off
breaks none of them; but what the replica dates by its own clock (its logs, the times it
reports) is off by as much, and a large offset says its time service has failed. Every
replica measures it at start and then periodically, exports it as the gauge
``fortnox_bridge.clock.offset`` and logs a warning while it is beyond the threshold.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Protocol

from adapters import metrics
from core.clock import Clock, utc_now
from core.errors import StorageUnavailable

_log = logging.getLogger(__name__)

#: How often each replica measures the offset.
CHECK_EVERY_S = 60.0


class DatabaseTime(Protocol):
    """The database's clock, read by a query (never a replica's)."""

    async def now(self) -> datetime:
        """The database's current time, timezone-aware."""
        ...


class DatabaseClock:
    """The database's time as this replica reckons it without a query: its own clock less
    the offset last measured (none until the first check). The Fortnox adapter dates tokens
    and decides when one is due by it, so a replica whose clock is off neither renews a
    token early nor uses one past its expiry."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return self.clock() - self.offset


class ClockSkewWatch:
    """Measures this replica's clock against the database's (replica minus database, in
    seconds, taken at the midpoint of the round trip), and keeps ``database_clock`` set by
    it."""

    def __init__(self, database: DatabaseTime, *, warn_after_s: float,
                 database_clock: DatabaseClock | None = None) -> None:
        self._database = database
        self._warn_after_s = warn_after_s
        self.database_clock = database_clock if database_clock is not None else DatabaseClock()
        self._clock = self.database_clock.clock

    async def check(self) -> float:
        """Measures the offset once, records it, warns when it is beyond the threshold."""
        before = self._clock()
        database = await self._database.now()
        after = self._clock()
        offset = ((before + (after - before) / 2) - database).total_seconds()
        self.database_clock.offset = timedelta(seconds=offset)
        metrics.clock_offset(offset)
        if abs(offset) > self._warn_after_s:
            _log.warning(
                "this replica's clock is off the database's; leases are judged by the"
                " database's, but this replica's own times are off by as much",
                extra={"clock_offset_s": round(offset, 3),
                       "threshold_s": self._warn_after_s})
        return offset

    async def run(self, every_s: float = CHECK_EVERY_S) -> None:
        """Checks now and every ``every_s`` until cancelled; a database away is logged and
        tried again at the next check."""
        while True:
            try:
                await self.check()
            except StorageUnavailable:
                _log.warning("could not read the database's clock; trying again later")
            await asyncio.sleep(every_s)
