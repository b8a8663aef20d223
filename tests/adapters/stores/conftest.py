"""The store contract's fixtures: every test runs against each backend in ``BACKENDS``.

``store_factory`` opens stores on one fresh database per test; each call opens another set on
the same database, as another process would. ``store_factory.query`` runs plain SQL for the
checks the ports do not offer (the tables are named alike in every backend).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest

from adapters.postgres.stores import PostgresStores
from adapters.sql.statements import STALE_AFTER
from adapters.sqlite import SqliteStores
from core.clock import Clock, utc_now
from core.stores import Stores
from tests.harness.postgres import shared_server

TOKEN_KEY = bytes(range(32))


class StoreFactory(Protocol):
    """Opens stores on the test's database."""

    async def __call__(self, *, clock: Clock = utc_now,
                       stale_after: timedelta = STALE_AFTER) -> Stores: ...

    async def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...


class SqliteFactory:
    """Stores on one SQLite file, each set with its own connections."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened: list[SqliteStores] = []

    async def __call__(self, *, clock: Clock = utc_now,
                       stale_after: timedelta = STALE_AFTER) -> Stores:
        stores = SqliteStores(self.path, TOKEN_KEY, clock=clock, stale_after=stale_after)
        self.opened.append(stores)
        return stores

    async def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.path) as db:
            return db.execute(sql, params).fetchall()


@asynccontextmanager
async def sqlite_backend(tmp_path: Path) -> AsyncIterator[StoreFactory]:
    factory = SqliteFactory(tmp_path / "store.sqlite3")
    try:
        yield factory
    finally:
        for stores in factory.opened:
            await stores.aclose()


class PostgresFactory:
    """Stores on one PostgreSQL database, each set with its own pool."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opened: list[PostgresStores] = []

    async def __call__(self, *, clock: Clock = utc_now,
                       stale_after: timedelta = STALE_AFTER) -> Stores:
        stores = await PostgresStores.open(self.url, TOKEN_KEY, pool_size=4, clock=clock,
                                           stale_after=stale_after)
        self.opened.append(stores)
        return stores

    async def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            cursor = await conn.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
            return await cursor.fetchall() if cursor.description else []


@asynccontextmanager
async def postgres_backend(tmp_path: Path) -> AsyncIterator[StoreFactory]:
    factory = PostgresFactory(shared_server().create_database())
    try:
        yield factory
    finally:
        for stores in factory.opened:
            await stores.aclose()


#: Each backend: a context that yields a factory over a fresh database in ``tmp_path``.
BACKENDS: dict[str, Callable[[Path], AbstractAsyncContextManager[StoreFactory]]] = {
    "sqlite": sqlite_backend,
    "postgres": postgres_backend,
}


@pytest.fixture(params=sorted(BACKENDS))
async def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreFactory]:
    async with BACKENDS[request.param](tmp_path) as factory:
        yield factory


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def stores(store_factory: StoreFactory, clock: ManualClock) -> Stores:
    return await store_factory(clock=clock)
