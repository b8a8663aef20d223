"""The connection pool every PostgreSQL store shares, and its schema applied at open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, LiteralString, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import DictRow, class_row, dict_row
from psycopg_pool import AsyncConnectionPool

from adapters.postgres.errors import storage_errors
from adapters.postgres.migrations import migrate
from core.paging import decode_page_token

Conn = AsyncConnection[DictRow]
R = TypeVar("R")


def sql(statement: LiteralString) -> LiteralString:
    """A statement written with ``?`` placeholders (``adapters.sql.statements``) in psycopg's."""
    return statement.replace("?", "%s")


def page_start(token: str) -> tuple[datetime, str] | None:
    """Where the page a token names starts, as PostgreSQL compares it; ``None``: the first."""
    if not token:
        return None
    instant, key = decode_page_token(token)
    return datetime.fromisoformat(instant), key


async def select(
    conn: Conn, row_type: type[R], query: LiteralString, params: Sequence[Any]
) -> list[R]:
    """The rows of ``query`` as ``row_type``, built by column name."""
    async with conn.cursor(row_factory=class_row(row_type)) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchall()


async def select_one(
    conn: Conn, row_type: type[R], query: LiteralString, params: Sequence[Any]
) -> R | None:
    """The first row of ``query`` as ``row_type``, or ``None``."""
    rows = await select(conn, row_type, query, params)
    return rows[0] if rows else None


async def database_now(conn: Conn) -> datetime:
    """The database's clock (``clock_timestamp()``): what leases and sweeps are judged by,
    never a time a replica passes in."""
    cursor = await conn.execute("SELECT clock_timestamp() AS now")
    row = await cursor.fetchone()
    assert row is not None
    now: datetime = row["now"]
    return now


class PostgresDatabase:
    """An async pool of autocommit connections whose rows are dicts and times UTC.

    Every use goes through :func:`storage_errors`, so a database fault reaches the caller as
    ``StorageUnavailable`` whichever store met it.
    """

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[DictRow]]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection[DictRow]]:
        """A pooled connection inside one transaction, committed when the block ends."""
        async with storage_errors(), self._pool.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[DictRow]]:
        """A pooled connection in autocommit: each statement is a transaction of its own."""
        async with storage_errors(), self._pool.connection() as conn:
            yield conn

    async def close(self) -> None:
        """Closes every pooled connection."""
        await self._pool.close()


async def open_postgres(
    url: str, *, min_size: int = 1, max_size: int = 10, timeout_s: float = 10.0,
    wait_s: float = 3.0,
) -> PostgresDatabase:
    """Opens a pool on ``url`` and brings the schema up to date (safe on several replicas).

    A call waits at most ``wait_s`` for a pooled connection: once the server is away the pool
    has none to give, and the caller is owed ``StorageUnavailable`` before its own deadline.
    The pool's reconnecting also gives up after ``wait_s`` (the next call starts it afresh):
    its back-off doubles without bound, and would find a returned server only as late as it
    had been away.
    """
    settings: dict[str, Any] = {
        "autocommit": True, "row_factory": dict_row, "options": "-c TimeZone=UTC"}
    pool = AsyncConnectionPool(
        url, min_size=min_size, max_size=max_size, timeout=wait_s, reconnect_timeout=wait_s,
        open=False,
        connection_class=AsyncConnection[DictRow], kwargs=settings, name="fortnox-bridge",
    )
    async with storage_errors():
        # One connection first: a wrong URL fails at once with the server's reason.
        async with await AsyncConnection.connect(
            url, connect_timeout=max(2, int(timeout_s)), **settings
        ) as conn:
            await migrate(conn)
        try:
            await pool.open(wait=True, timeout=timeout_s)
        except BaseException:
            await pool.close()
            raise
    return PostgresDatabase(pool)
