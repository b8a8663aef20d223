"""Job leases in the SQLite file: one process sharing it runs each background job per period."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from adapters.sqlite.database import SqliteThread


class SqliteJobLeases:
    """``core.jobs.JobLeases`` over ``job_leases``: an upsert that succeeds only where the
    lease has expired, dated by the wall clock the processes of one machine share."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._thread = SqliteThread(path)
        self._clock = clock

    async def aclose(self) -> None:
        """Closes the connection after the calls already queued."""
        await self._thread.aclose()

    async def take(self, job: str, owner: str, period_s: float) -> bool:
        def upsert(db: Database) -> bool:
            now = self._clock()
            row = db.execute(
                "INSERT INTO job_leases (job, owner, expires_at, last_run_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (job) DO UPDATE SET owner = excluded.owner,"
                " expires_at = excluded.expires_at, last_run_at = excluded.last_run_at"
                " WHERE job_leases.expires_at <= excluded.last_run_at RETURNING owner",
                [job, owner, now + period_s, now],
            ).fetchone()
            return row is not None
        return await self._thread.run(upsert)
