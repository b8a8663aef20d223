"""One SQLite connection used from worker threads, one call at a time."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from core.errors import StorageUnavailable

T = TypeVar("T")

#: How long a writer waits for another process's write lock before giving up.
BUSY_TIMEOUT_S = 30.0


class SqliteConnection:
    """Runs a function in a worker thread inside ``BEGIN IMMEDIATE`` on the file's connection;
    a fault of the file becomes ``StorageUnavailable``."""

    def __init__(self, path: Path, schema: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
        )
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(schema)  # IF NOT EXISTS: idempotent, whoever comes first
        self._lock = threading.Lock()

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(conn)`` in one write transaction, off the event loop."""
        return await asyncio.to_thread(self._write, work)

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(self._conn)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                raise StorageUnavailable(
                    "The service's database is not available; try again shortly.",
                    metadata={"error": type(exc).__name__},
                ) from exc
            return result

    def close(self) -> None:
        """Closes the connection."""
        with self._lock:
            self._conn.close()
