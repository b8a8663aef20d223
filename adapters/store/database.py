"""Opening the SQLite file: WAL, a busy timeout for several workers, and the migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from adapters.store.migrations import MIGRATIONS

#: How long a writer waits for another process's write lock before giving up.
BUSY_TIMEOUT_MS = 30_000


class StoreError(Exception):
    """The database file cannot be opened or migrated."""


def open_database(path: Path) -> Database:
    """Opens (creating if needed) and migrates the store at ``path``.

    The connection may be used from worker threads (``check_same_thread=False``); callers
    serialise access to it.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
        )
        db = Database(conn)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.enable_wal()
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")
        with immediate(db):  # two workers starting at once must not both migrate
            MIGRATIONS.apply(db)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    return db


@contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """A write transaction that takes SQLite's write lock up front.

    sqlite-utils' ``atomic()`` begins a deferred transaction: one that reads before it writes
    fails at once with "database is locked" when another connection wrote in between, since
    WAL cannot upgrade a stale snapshot. Taking the lock first makes it wait its turn instead.
    """
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
