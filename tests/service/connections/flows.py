"""What Skatt & Bokslut and the customer do to connect, for the connection tests."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import psycopg
import pytest
from google.type import date_pb2

from sandbox.testing import SandboxHandle, SandboxTenant
from spiris.skattbokslut.fortnox.v1 import connection_pb2
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import sie_import_pb2 as sie_pb
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb
from tests.harness.errors import error_info
from tests.harness.vouchers import request, voucher

SERVICE = connection_pb2.ACCOUNT_TYPE_SERVICE
USER = connection_pb2.ACCOUNT_TYPE_USER
Connection = connection_pb2.Connection


def redirect(authorization_url: str, login: str) -> dict[str, str]:
    """Plays the customer's browser: logs in as ``login`` and reads where Fortnox sends it."""
    url = httpx.URL(authorization_url).copy_add_param("user", login)
    answer = httpx.get(url, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}


async def start(stub: pb_grpc.FortnoxServiceStub, sb: SandboxHandle, tenant: str,
                company: SandboxTenant, account_type: int = USER) -> pb.ConnectResponse:
    """Connect, naming the company the tenant expects."""
    started: pb.ConnectResponse = await stub.Connect(pb.ConnectRequest(
        tenant=tenant, redirect_uri=sb.redirect_uri, account_type=account_type,  # type: ignore[arg-type]
        expected_organisation_number=company.organisation_number))
    return started


async def complete(stub: pb_grpc.FortnoxServiceStub, back: dict[str, str]) -> Connection:
    """CompleteConnect with whatever Fortnox sent to the redirect URI."""
    done: pb.CompleteConnectResponse = await stub.CompleteConnect(pb.CompleteConnectRequest(
        state=back["state"], code=back.get("code", ""), error=back.get("error", ""),
        error_description=back.get("error_description", "")))
    return done.connection


async def connect(stub: pb_grpc.FortnoxServiceStub, sb: SandboxHandle, tenant: str,
                  company: SandboxTenant, account_type: int = USER) -> Connection:
    """The whole flow, logged in as the company's administrator."""
    started = await start(stub, sb, tenant, company, account_type)
    return await complete(stub, redirect(started.authorization_url, company.administrator))


async def fails(call: Awaitable[object], code: grpc.StatusCode, reason: str
                ) -> grpc.aio.AioRpcError:
    """Awaits a call that must fail with ``code`` and ErrorInfo ``reason``."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert (caught.value.code(), error_info(caught.value).reason) == (code, reason), (
        caught.value.details())
    return caught.value


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
