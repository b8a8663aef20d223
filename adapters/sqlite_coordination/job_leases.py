"""Job leases in the SQLite file: one process of the machine runs each job per period."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from adapters.sqlite_coordination.connection import SqliteConnection

_SCHEMA = """
CREATE TABLE IF NOT EXISTS job_leases (
    job TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL,
    last_run_at REAL
);
"""


class SqliteJobLeases:
    """``core.jobs.JobLeases`` over ``job_leases``: an upsert inside ``BEGIN IMMEDIATE`` that
    succeeds only where the lease has expired, dated by the wall clock the processes share."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._db = SqliteConnection(path, _SCHEMA)
        self._clock = clock

    async def take(self, job: str, owner: str, period_s: float) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            now = self._clock()
            row = conn.execute(
                "INSERT INTO job_leases (job, owner, expires_at, last_run_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (job) DO UPDATE SET owner = excluded.owner,"
                " expires_at = excluded.expires_at, last_run_at = excluded.last_run_at"
                " WHERE job_leases.expires_at <= excluded.last_run_at RETURNING owner",
                (job, owner, now + period_s, now),
            ).fetchone()
            return row is not None

        return await self._db.write(work)

    def close(self) -> None:
        """Closes the leases' connection."""
        self._db.close()
