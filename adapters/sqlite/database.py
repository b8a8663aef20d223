"""The SQLite file: opened private, in WAL mode with a busy timeout for several processes,
migrated and proven writable; and the thread each store's connection lives on.

Every store keeps one connection and runs every call to it on a thread of its own
(``SqliteThread``), so the event loop never waits for SQLite's lock or the disk, and calls to
one connection never overlap. ``SqliteThread`` is also the one place that turns SQLite's
errors into ``StorageUnavailable``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from sqlite_utils import Database

from adapters.sqlite.migrations import MIGRATIONS
from core.errors import StorageUnavailable

#: How long a writer waits for another process's write lock before giving up.
BUSY_TIMEOUT_MS = 30_000
#: The database and its ``-wal`` and ``-shm`` files are readable by their owner only.
PRIVATE_MODE = 0o600

#: Errors of the program, not of the storage: they stay what they are (INTERNAL).
_PROGRAM_ERRORS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError,
                   sqlite3.DataError, sqlite3.NotSupportedError)

_log = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")
S = TypeVar("S", bound="ThreadedStore")


class StoreError(Exception):
    """The database file cannot be opened, migrated or written at start."""


def open_database(path: Path) -> Database:
    """Opens (creating if needed), migrates and write-tests the store at ``path``.

    The connection may be used from another thread (``check_same_thread=False``); callers
    serialise access to it.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _make_private(path)
        old_umask = os.umask(0o077)  # SQLite creates the file, -wal and -shm with 0644 else
        try:
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
                isolation_level=None,
            )
            db = Database(conn)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.enable_wal()
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = NORMAL")
            with immediate(db):  # two workers starting at once must not both migrate
                MIGRATIONS.apply(db)
                _prove_writable(db)
        finally:
            os.umask(old_umask)
        _make_private(path)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    return db


def _make_private(path: Path) -> None:
    """Takes group and other permissions off the database files this user owns."""
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with suppress(FileNotFoundError):
            status = name.stat()
            if status.st_mode & 0o077 and status.st_uid == os.geteuid():
                name.chmod(PRIVATE_MODE)


def _prove_writable(db: Database) -> None:
    """Writes the header's user version back: a read-only file fails here, at start, and not
    at the first call that writes."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    db.execute(f"PRAGMA user_version = {int(version)}")


def database_now(db: Database) -> datetime:
    """SQLite's own clock (milliseconds, UTC): what leases and sweeps are judged by, never a
    time a caller passes in (processes sharing the file share the machine's clock)."""
    (text,) = db.execute("SELECT strftime('%Y-%m-%dT%H:%M:%f', 'now')").fetchone()
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """A write transaction that takes SQLite's write lock up front.

    sqlite-utils' ``atomic()`` begins a deferred transaction: one that reads before it writes
    fails at once with "database is locked" when another connection wrote in between, since
    WAL cannot upgrade a stale snapshot. Taking the lock first makes it wait its turn instead.
    A COMMIT that fails (a full disk) is rolled back, so the connection is usable again.
    """
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.conn.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            with suppress(sqlite3.Error):
                db.conn.execute("ROLLBACK")
        raise


class SqliteThread:
    """One SQLite connection and the one thread that runs every call to it."""

    def __init__(self, path: Path) -> None:
        self._db = open_database(path)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"sqlite-{path.name}")
        self._closed = False

    async def run(self, call: Callable[[Database], T]) -> T:
        """Runs ``call`` with the connection on the store's thread."""
        if self._closed:
            raise StorageUnavailable("The service's storage is closed; the service is stopping.")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, call)

    async def run_each(self, calls: list[Callable[[Database], T]]) -> list[T | Exception]:
        """Runs ``calls`` one after another on the store's thread in one trip to it: what
        each returned, or the error it raised (as ``run`` raises it). A busy event loop hands
        the interpreter to another thread only every few milliseconds, so each trip waits
        that long: ``n`` calls in one trip wait once, not ``n`` times."""
        if self._closed:
            raise StorageUnavailable("The service's storage is closed; the service is stopping.")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._each, calls)

    def _each(self, calls: list[Callable[[Database], T]]) -> list[T | Exception]:
        outcomes: list[T | Exception] = []
        for call in calls:
            try:
                outcomes.append(self._guarded(call))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def _guarded(self, call: Callable[[Database], T]) -> T:
        try:
            return call(self._db)
        except _PROGRAM_ERRORS:
            raise
        except (sqlite3.Error, OSError) as exc:
            _log.error("storage error", extra={"error": f"{type(exc).__name__}: {exc}"})
            raise StorageUnavailable(
                "The service's storage cannot be used right now; try again shortly."
            ) from exc

    async def aclose(self) -> None:
        """Closes the connection after the calls already queued on its thread."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._db.close)
        except sqlite3.Error as exc:  # a full disk may refuse the last checkpoint: WAL keeps it
            _log.warning("closing the database failed", extra={"error": str(exc)})
        self._executor.shutdown(wait=True)


class ThreadedStore:
    """A store whose connection lives on a ``SqliteThread`` of its own, and whose methods are
    written synchronously, each marked :func:`on_thread`."""

    def __init__(self, path: Path) -> None:
        self._thread = SqliteThread(path)

    async def aclose(self) -> None:
        """Closes the connection after the calls already queued."""
        await self._thread.aclose()


class on_thread(Generic[S, P, T]):  # a decorator, named like one
    """Makes ``def method(self, db, ...) -> T`` of a ``ThreadedStore`` the store's ``async def
    method(...) -> T``, run with the connection on the store's thread: a store method is
    written once, with no forwarder in front of it."""

    def __init__(self, method: Callable[Concatenate[S, Database, P], T]) -> None:
        self._method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, store: None, owner: type[S]) -> on_thread[S, P, T]: ...

    @overload
    def __get__(self, store: S, owner: type[S]) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, store: S | None, owner: type[S]) -> Any:
        if store is None:
            return self
        method = self._method

        async def run(*args: P.args, **kwargs: P.kwargs) -> T:
            return await store._thread.run(lambda db: method(store, db, *args, **kwargs))
        return run
