"""The voucher export record in SQLite: ``export_requests`` and ``voucher_exports``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlite_utils import Database

from adapters import store_sql
from adapters.store.database import SqliteThread, immediate
from adapters.store.rows import iso, select, select_one
from adapters.store_rows import EXPORT_COLUMNS, ExportRow, export_record
from core.clock import Clock, utc_now
from core.paging import decode_page_token, split_page
from core.voucher_export.history import (
    ClaimStatus,
    ExportClaim,
    ExportPage,
    ExportRecord,
    decided_claim,
    request_id_reused,
)
from core.voucher_export.model import VoucherResult


class SqliteExportHistory:
    """``core.voucher_export.history.ExportHistory`` over the store's export tables.

    Every write is its own transaction, committed before the caller goes on: the intent is on
    disk before the POST, the answer before it is returned. A claim reads and writes the
    voucher's row inside one ``BEGIN IMMEDIATE``, which every process sharing the file
    serialises on.
    """

    def __init__(self, path: Path, clock: Clock = utc_now) -> None:
        self._thread = SqliteThread(path)
        self._clock = clock

    async def aclose(self) -> None:
        """Closes the connection after the calls already queued."""
        await self._thread.aclose()

    async def open_request(
        self, tenant: str, request_id: str, payload_sha256: str, requested_by: str
    ) -> bool:
        def write(db: Database) -> bool:
            inserted = db.execute(
                "INSERT OR IGNORE INTO export_requests (tenant, request_id, payload_sha256,"
                " requested_by, created_at) VALUES (?, ?, ?, ?, ?)",
                [tenant, request_id, payload_sha256, requested_by, iso(self._clock())],
            ).rowcount
            if _digest(db, tenant, request_id) != payload_sha256:
                raise request_id_reused(request_id)
            return bool(inserted)
        return await self._thread.run(write)

    async def request_digest(self, tenant: str, request_id: str) -> str | None:
        return await self._thread.run(lambda db: _digest(db, tenant, request_id))

    async def finish_request(self, tenant: str, request_id: str) -> None:
        await self._thread.run(lambda db: db.execute(
            "UPDATE export_requests SET finished_at = ? WHERE tenant = ? AND request_id = ?",
            [iso(self._clock()), tenant, request_id],
        ))

    async def get(self, tenant: str, external_id: str) -> ExportRecord | None:
        return await self._thread.run(lambda db: _get(db, tenant, external_id))

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
        def take(db: Database) -> ExportClaim:
            with immediate(db):
                now = self._clock()
                found = _get(db, tenant, external_id)
                decided = decided_claim(found, request_id, owner, now, lease)
                if decided is not None:
                    return decided
                db.execute(store_sql.CLAIM_EXPORT, [
                    tenant, external_id, request_id, payload_sha256, marker, financial_year_id,
                    requested_by, iso(now), owner, iso(now + lease)])
                return ExportClaim(ClaimStatus.TAKEN, found)
        return await self._thread.run(take)

    async def mark_unknown(self, tenant: str, external_id: str) -> None:
        await self._thread.run(lambda db: db.execute(
            store_sql.MARK_UNKNOWN, [iso(self._clock()), tenant, external_id]))

    async def mark_created(
        self, tenant: str, external_id: str, series: str, number: int, financial_year_id: int
    ) -> VoucherResult:
        def write(db: Database) -> VoucherResult:
            db.execute(store_sql.MARK_CREATED, [
                series, number, financial_year_id, iso(self._clock()), tenant, external_id])
            return _result(db, tenant, external_id)
        return await self._thread.run(write)

    async def mark_rejected(
        self, tenant: str, external_id: str, reason: str, message: str, fortnox_code: str,
        fortnox_message: str,
    ) -> VoucherResult:
        def write(db: Database) -> VoucherResult:
            db.execute(store_sql.MARK_REJECTED, [
                reason, message, fortnox_code, fortnox_message, tenant, external_id])
            return _result(db, tenant, external_id)
        return await self._thread.run(write)

    async def list_exports(
        self, tenant: str, request_id: str, external_id: str, limit: int, cursor: str
    ) -> ExportPage:
        clause, params = store_sql.exports_page(
            tenant, request_id, external_id, decode_page_token(cursor) if cursor else None, limit)
        rows = await self._thread.run(lambda db: select(
            db, ExportRow, f"SELECT {EXPORT_COLUMNS} FROM voucher_exports {clause}", params))
        return ExportPage(*split_page([export_record(row) for row in rows], limit,
                                      store_sql.export_page_token))


def _digest(db: Database, tenant: str, request_id: str) -> str | None:
    row = db.execute(
        "SELECT payload_sha256 FROM export_requests WHERE tenant = ? AND request_id = ?",
        [tenant, request_id],
    ).fetchone()
    if row is None:
        return None
    (digest,) = row
    return str(digest)


def _get(db: Database, tenant: str, external_id: str) -> ExportRecord | None:
    row = select_one(
        db, ExportRow,
        f"SELECT {EXPORT_COLUMNS} FROM voucher_exports WHERE tenant = ? AND external_id = ?",
        [tenant, external_id])
    return export_record(row) if row else None


def _result(db: Database, tenant: str, external_id: str) -> VoucherResult:
    record = _get(db, tenant, external_id)
    assert record is not None, "marked records exist"
    return record.result
