"""What the connection tests do beside connecting: read, age and wait on the stored
connection, import and export through it."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from google.type import date_pb2

from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import sie_import_pb2 as sie_pb
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb
from tests.harness.connect import Connection
from tests.harness.vouchers import request, voucher


async def connection_of(stub: pb_grpc.FortnoxServiceStub, tenant: str) -> Connection:
    """GetConnection's answer."""
    got: pb.GetConnectionResponse = await stub.GetConnection(pb.GetConnectionRequest(
        tenant=tenant))
    return got.connection


async def import_books(stub: pb_grpc.FortnoxServiceStub, tenant: str) -> int:
    """An ImportSie of the 2025 books; the number of years summarised."""
    years = 0
    async for event in stub.ImportSie(pb.ImportSieRequest(
            tenant=tenant, omit_raw_chunks=True,
            years=[sie_pb.YearSelector(date_in_year=date_pb2.Date(year=2025, month=6, day=30))])):
        years += event.HasField("year_summary")
    return years


async def export_one(stub: pb_grpc.FortnoxServiceStub, tenant: str) -> str:
    """Books one year-end voucher; its external id."""
    external_id = f"{tenant}-{uuid.uuid4()}"
    answer = await stub.ExportVouchers(request(
        tenant, [voucher(external_id, date(2025, 12, 31), 10_000)]))
    assert answer.results[0].outcome == v_pb.VoucherResult.OUTCOME_CREATED, answer
    return external_id


@dataclass(frozen=True)
class Database:
    """The service's database as the tests read and age it: a SQLite file, or PostgreSQL
    when ``url`` is set."""

    path: Path
    url: str = ""

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement (``?`` placeholders), committed."""
        if self.url:
            with psycopg.connect(self.url) as pg:
                cursor = pg.execute(sql.replace("?", "%s"), params)
                return list(cursor.fetchall()) if cursor.description else []
        with sqlite3.connect(self.path) as db:
            return list(db.execute(sql, params).fetchall())


def age_refresh_token(database: Database, tenant: str, days: float) -> None:
    """Makes the tenant's refresh token look ``days`` old to the service (its sandbox twin is
    aged with the sandbox clock)."""
    then = datetime.now(UTC) - timedelta(days=days)
    database.rows("UPDATE connections SET last_refreshed_at = ? WHERE tenant = ?",
                  (then if database.url else then.isoformat(), tenant))


def stored(database: Database, tenant: str, column: str) -> object:
    """One column of the tenant's stored connection, read straight from the database."""
    rows = database.rows(f"SELECT {column} FROM connections WHERE tenant = ?",
                         (tenant,))
    return rows[0][0] if rows else None


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    """Waits until ``check`` holds (a background job's effect)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)
