"""The voucher export record in PostgreSQL: ``export_requests`` and ``voucher_exports``.

The same rules as ``adapters.sqlite.exports``: every write commits before the caller goes on,
and a claim reads and writes the voucher's row in one transaction, under an advisory lock on
(tenant, external id) that every replica serialises on, whether or not the row exists yet.
Claims, leases and their renewals are dated by PostgreSQL's ``clock_timestamp()`` (read after
the lock is held), never by the replica's clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncCursor

from adapters.postgres.database import Conn, PostgresDatabase, page_start, select, select_one, sql
from adapters.sql import statements
from adapters.sql.rows import EXPORT_COLUMNS, ExportRow, claim_row, export_record
from core.clock import Clock, utc_now
from core.paging import split_page
from core.voucher_export.history import (
    ClaimLost,
    ClaimStatus,
    ExportClaim,
    ExportPage,
    ExportRecord,
    Fence,
    Place,
    Refusal,
    claimed,
    decided_claim,
    request_id_reused,
)
from core.voucher_export.model import VoucherResult


class PostgresExportHistory:
    """``core.voucher_export.history.ExportHistory`` over the export tables."""

    def __init__(self, db: PostgresDatabase, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def open_request(
        self, tenant: str, request_id: str, payload_sha256: str, requested_by: str
    ) -> bool:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO export_requests (tenant, request_id, payload_sha256,"
                " requested_by, created_at) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (tenant, request_id) DO NOTHING",
                (tenant, request_id, payload_sha256, requested_by, self._clock()),
            )
            if await _digest(conn, tenant, request_id) != payload_sha256:
                raise request_id_reused(request_id)
            return cursor.rowcount == 1

    async def request_digest(self, tenant: str, request_id: str) -> str | None:
        async with self._db.connection() as conn:
            return await _digest(conn, tenant, request_id)

    async def finish_request(self, tenant: str, request_id: str) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE export_requests SET finished_at = %s WHERE tenant = %s"
                " AND request_id = %s",
                (self._clock(), tenant, request_id),
            )

    async def get(self, tenant: str, external_id: str) -> ExportRecord | None:
        async with self._db.connection() as conn:
            return await _get(conn, tenant, external_id)

    async def get_many(
        self, tenant: str, external_ids: Sequence[str]
    ) -> list[ExportRecord | None]:
        async with self._db.connection() as conn:
            rows = await select(
                conn, ExportRow,
                "SELECT " + EXPORT_COLUMNS + " FROM voucher_exports"
                " WHERE tenant = %s AND external_id = ANY(%s)",
                (tenant, list(external_ids)))
        found = {record.external_id: record for record in map(export_record, rows)}
        return [found.get(external_id) for external_id in external_ids]

    async def claim(
        self,
        tenant: str,
        external_id: str,
        request_id: str,
        payload_sha256: str,
        marker: str,
        financial_year_id: int,
        requested_by: str,
        *,
        series: str,
        owner: str,
        lease: timedelta,
    ) -> ExportClaim:
        async with self._db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))",
                               (tenant, external_id))
            now = await _database_now(conn)
            found = await _get(conn, tenant, external_id)
            decided = decided_claim(found, request_id, owner, now, lease)
            if decided is not None:
                return decided
            fence, places = claimed(found, owner, Place(series, financial_year_id))
            await conn.execute(sql(statements.CLAIM_EXPORT), claim_row(
                tenant, external_id, request_id, payload_sha256, marker, financial_year_id,
                requested_by, now, owner, now + lease, fence, places))
            return ExportClaim(ClaimStatus.TAKEN, found, fence=fence)

    async def renew(
        self, tenant: str, external_id: str, fence: Fence, lease: timedelta
    ) -> bool:
        async with self._db.connection() as conn:
            cursor = await conn.execute(sql(_RENEW), (
                lease.total_seconds(), tenant, external_id, *fence))
            return cursor.rowcount == 1

    async def mark_unknown(self, tenant: str, external_id: str, fence: Fence) -> None:
        async with self._db.connection() as conn:
            _held(await conn.execute(sql(_MARK_UNKNOWN), (tenant, external_id, *fence)))

    async def mark_created(
        self, tenant: str, external_id: str, series: str, number: int, financial_year_id: int,
        fence: Fence,
    ) -> VoucherResult:
        async with self._db.connection() as conn:
            _held(await conn.execute(sql(_MARK_CREATED), (
                series, number, financial_year_id, tenant, external_id, *fence)))
            return await _result(conn, tenant, external_id)

    async def mark_rejected(
        self, tenant: str, external_id: str, refusal: Refusal, fence: Fence
    ) -> VoucherResult:
        async with self._db.connection() as conn:
            _held(await conn.execute(sql(statements.MARK_REJECTED), (
                *statements.refused(refusal), tenant, external_id, *fence)))
            return await _result(conn, tenant, external_id)

    async def list_exports(
        self, tenant: str, request_id: str, external_id: str, limit: int, cursor: str
    ) -> ExportPage:
        clause, params = statements.exports_page(
            tenant, request_id, external_id, page_start(cursor), limit)
        async with self._db.connection() as conn:
            rows = await select(conn, ExportRow, sql(
                "SELECT " + EXPORT_COLUMNS + " FROM voucher_exports " + clause), params)
        return ExportPage(*split_page([export_record(row) for row in rows], limit,
                                      statements.export_page_token))


_RENEW = statements.renew_export("clock_timestamp() + make_interval(secs => ?)")
_MARK_CREATED = statements.mark_created("clock_timestamp()")
_MARK_UNKNOWN = statements.mark_unknown("clock_timestamp()")


async def _database_now(conn: Conn) -> datetime:
    """PostgreSQL's time now (not the transaction's start: the claim may have waited on the
    lock)."""
    cursor = await conn.execute("SELECT clock_timestamp() AS now")
    row = await cursor.fetchone()
    assert row is not None
    now: datetime = row["now"]
    return now


def _held(cursor: AsyncCursor[Any]) -> None:
    """Raises ``ClaimLost`` when a fenced write found no record of its token."""
    if cursor.rowcount != 1:
        raise ClaimLost


async def _digest(conn: Conn, tenant: str, request_id: str) -> str | None:
    cursor = await conn.execute(
        "SELECT payload_sha256 FROM export_requests WHERE tenant = %s AND request_id = %s",
        (tenant, request_id),
    )
    row = await cursor.fetchone()
    return str(row["payload_sha256"]) if row else None


async def _get(conn: Conn, tenant: str, external_id: str) -> ExportRecord | None:
    row = await select_one(
        conn, ExportRow,
        "SELECT " + EXPORT_COLUMNS + " FROM voucher_exports WHERE tenant = %s AND external_id = %s",
        (tenant, external_id))
    return export_record(row) if row else None


async def _result(conn: Conn, tenant: str, external_id: str) -> VoucherResult:
    record = await _get(conn, tenant, external_id)
    assert record is not None, "marked records exist"
    return record.result
