"""The voucher export record in PostgreSQL: ``export_requests`` and ``voucher_exports``.

The same rules as ``adapters.store.exports``: every write commits before the caller goes on,
and a claim reads and writes the voucher's row in one transaction, under an advisory lock on
(tenant, external id) that every replica serialises on, whether or not the row exists yet.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, LiteralString

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from adapters.postgres.database import PostgresDatabase
from core.clock import Clock, utc_now
from core.paging import decode_page_token, encode_page_token, split_page
from core.voucher_export.history import (
    ClaimStatus,
    ExportClaim,
    ExportPage,
    ExportRecord,
    ExportStatus,
    decided_claim,
    request_id_reused,
)
from core.voucher_export.model import Outcome, VoucherResult

Conn = AsyncConnection[DictRow]

_COLUMNS: LiteralString = (
    "tenant, external_id, request_id, payload_sha256, marker, status, voucher_series,"
    " voucher_number, financial_year_id, reason, message, fortnox_code, fortnox_message,"
    " requested_by, attempted_at, exported_at, worker_id, lease_expires_at")
_OUTCOMES = {ExportStatus.CREATED: Outcome.CREATED, ExportStatus.REJECTED: Outcome.REJECTED}
_UNSETTLED_TEXT = {
    ExportStatus.PENDING: ("EXPORT_PENDING", "The voucher was about to be posted."),
    ExportStatus.UNKNOWN: ("FORTNOX_OUTCOME_UNKNOWN", "Fortnox's answer to the POST was lost."),
}


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
        owner: str,
        lease: timedelta,
    ) -> ExportClaim:
        async with self._db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))",
                               (tenant, external_id))
            now = self._clock()
            found = await _get(conn, tenant, external_id)
            decided = decided_claim(found, request_id, owner, now, lease)
            if decided is not None:
                return decided
            await conn.execute(
                "INSERT INTO voucher_exports (tenant, external_id, request_id,"
                " payload_sha256, marker, status, financial_year_id, requested_by,"
                " attempted_at, worker_id, lease_expires_at)"
                " VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s, %s, %s, %s)"
                " ON CONFLICT (tenant, external_id) DO UPDATE SET"
                " request_id = excluded.request_id, payload_sha256 = excluded.payload_sha256,"
                " marker = excluded.marker, status = 'pending', voucher_series = '',"
                " voucher_number = 0, financial_year_id = excluded.financial_year_id,"
                " reason = '', message = '', fortnox_code = '', fortnox_message = '',"
                " requested_by = excluded.requested_by, attempted_at = excluded.attempted_at,"
                " exported_at = NULL, worker_id = excluded.worker_id,"
                " lease_expires_at = excluded.lease_expires_at",
                (tenant, external_id, request_id, payload_sha256, marker, financial_year_id,
                 requested_by, now, owner, now + lease),
            )
            return ExportClaim(ClaimStatus.TAKEN, found)

    async def mark_unknown(self, tenant: str, external_id: str) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE voucher_exports SET status = 'unknown', lease_expires_at = %s"
                " WHERE tenant = %s AND external_id = %s AND status = 'pending'",
                (self._clock(), tenant, external_id),
            )

    async def mark_created(
        self, tenant: str, external_id: str, series: str, number: int, financial_year_id: int
    ) -> VoucherResult:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE voucher_exports SET status = 'created', voucher_series = %s,"
                " voucher_number = %s, financial_year_id = %s, exported_at = %s,"
                " lease_expires_at = NULL WHERE tenant = %s AND external_id = %s",
                (series, number, financial_year_id, self._clock(), tenant, external_id),
            )
            return await _result(conn, tenant, external_id)

    async def mark_rejected(
        self, tenant: str, external_id: str, reason: str, message: str, fortnox_code: str,
        fortnox_message: str,
    ) -> VoucherResult:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE voucher_exports SET status = 'rejected', reason = %s, message = %s,"
                " fortnox_code = %s, fortnox_message = %s, lease_expires_at = NULL"
                " WHERE tenant = %s AND external_id = %s",
                (reason, message, fortnox_code, fortnox_message, tenant, external_id),
            )
            return await _result(conn, tenant, external_id)

    async def list_exports(
        self, tenant: str, request_id: str, external_id: str, limit: int, cursor: str
    ) -> ExportPage:
        where: LiteralString = "WHERE tenant = %s"
        params: list[Any] = [tenant]
        if request_id:
            where += " AND request_id = %s"
            params.append(request_id)
        if external_id:
            where += " AND external_id = %s"
            params.append(external_id)
        if cursor:
            where += " AND (attempted_at, external_id) < (%s, %s)"
            params += list(_decode_cursor(cursor))
        async with self._db.connection() as conn:
            rows = await (await conn.execute(
                "SELECT " + _COLUMNS + " FROM voucher_exports " + where
                + " ORDER BY attempted_at DESC, external_id DESC LIMIT %s",
                [*params, limit + 1],
            )).fetchall()
        return ExportPage(*split_page([_record(row) for row in rows], limit, _encode_cursor))


async def _digest(conn: Conn, tenant: str, request_id: str) -> str | None:
    cursor = await conn.execute(
        "SELECT payload_sha256 FROM export_requests WHERE tenant = %s AND request_id = %s",
        (tenant, request_id),
    )
    row = await cursor.fetchone()
    return str(row["payload_sha256"]) if row else None


async def _get(conn: Conn, tenant: str, external_id: str) -> ExportRecord | None:
    cursor = await conn.execute(
        "SELECT " + _COLUMNS + " FROM voucher_exports WHERE tenant = %s AND external_id = %s",
        (tenant, external_id),
    )
    row = await cursor.fetchone()
    return _record(row) if row else None


async def _result(conn: Conn, tenant: str, external_id: str) -> VoucherResult:
    record = await _get(conn, tenant, external_id)
    assert record is not None, "marked records exist"
    return record.result


def _record(row: DictRow) -> ExportRecord:
    status = ExportStatus(row["status"])
    reason, message = _UNSETTLED_TEXT.get(status, (row["reason"], row["message"]))
    result = VoucherResult(
        external_id=row["external_id"],
        outcome=_OUTCOMES.get(status, Outcome.NOT_ATTEMPTED),
        series=row["voucher_series"],
        number=row["voucher_number"],
        financial_year_id=row["financial_year_id"],
        reason=reason,
        message=message,
        fortnox_code=row["fortnox_code"],
        fortnox_message=row["fortnox_message"],
        exported_at=row["exported_at"],
        request_id=row["request_id"],
    )
    return ExportRecord(
        tenant=row["tenant"], external_id=row["external_id"], request_id=row["request_id"],
        payload_sha256=row["payload_sha256"], marker=row["marker"], status=status,
        result=result, requested_by=row["requested_by"], attempted_at=row["attempted_at"],
        owner=row["worker_id"], lease_expires_at=row["lease_expires_at"],
    )


def _encode_cursor(record: ExportRecord) -> str:
    return encode_page_token(record.attempted_at, record.external_id)


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    instant, key = decode_page_token(cursor)
    return datetime.fromisoformat(instant), key
