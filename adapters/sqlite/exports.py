"""The voucher export record in SQLite: ``export_requests`` and ``voucher_exports``.

Claims, leases and their renewals are dated by SQLite's own clock (``'now'`` in SQL), the one
machine every process sharing the file runs on, never by a time the caller passes in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import LiteralString

from sqlite_utils import Database

from adapters.sql import statements
from adapters.sql.rows import EXPORT_COLUMNS, ExportRow, claim_row, export_record
from adapters.sqlite.database import SqliteThread, immediate
from adapters.sqlite.rows import iso, select, select_one, written
from core.clock import Clock, utc_now
from core.paging import decode_page_token, split_page
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

    async def get_many(
        self, tenant: str, external_ids: Sequence[str]
    ) -> list[ExportRecord | None]:
        def read(db: Database) -> list[ExportRecord | None]:
            found: dict[str, ExportRecord] = {}
            ids = list(dict.fromkeys(external_ids))
            for start in range(0, len(ids), _IDS_PER_READ):
                part = ids[start:start + _IDS_PER_READ]
                for row in select(
                        db, ExportRow,
                        f"SELECT {EXPORT_COLUMNS} FROM voucher_exports WHERE tenant = ?"
                        f" AND external_id IN ({', '.join('?' * len(part))})",
                        [tenant, *part]):
                    record = export_record(row)
                    found[record.external_id] = record
            return [found.get(external_id) for external_id in external_ids]
        return await self._thread.run(read)

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
        def take(db: Database) -> ExportClaim:
            with immediate(db):
                now = _database_now(db)
                found = _get(db, tenant, external_id)
                decided = decided_claim(found, request_id, owner, now, lease)
                if decided is not None:
                    return decided
                fence, places = claimed(found, owner, Place(series, financial_year_id))
                db.execute(statements.CLAIM_EXPORT, written(claim_row(
                    tenant, external_id, request_id, payload_sha256, marker, financial_year_id,
                    requested_by, now, owner, now + lease, fence, places)))
                return ExportClaim(ClaimStatus.TAKEN, found, fence=fence)
        return await self._thread.run(take)

    async def renew(
        self, tenant: str, external_id: str, fence: Fence, lease: timedelta
    ) -> bool:
        def write(db: Database) -> bool:
            return db.execute(_RENEW, [
                f"+{lease.total_seconds():.6f} seconds", tenant, external_id, *fence,
            ]).rowcount == 1
        return await self._thread.run(write)

    async def mark_unknown(self, tenant: str, external_id: str, fence: Fence) -> None:
        await self._thread.run(lambda db: _held(db.execute(
            _MARK_UNKNOWN, [tenant, external_id, *fence]).rowcount))

    async def mark_created(
        self, tenant: str, external_id: str, series: str, number: int, financial_year_id: int,
        fence: Fence,
    ) -> VoucherResult:
        def write(db: Database) -> VoucherResult:
            _held(db.execute(_MARK_CREATED, [
                series, number, financial_year_id, tenant, external_id, *fence]).rowcount)
            return _result(db, tenant, external_id)
        return await self._thread.run(write)

    async def mark_rejected(
        self, tenant: str, external_id: str, refusal: Refusal, fence: Fence
    ) -> VoucherResult:
        def write(db: Database) -> VoucherResult:
            _held(db.execute(statements.MARK_REJECTED, [
                *statements.refused(refusal), tenant, external_id, *fence]).rowcount)
            return _result(db, tenant, external_id)
        return await self._thread.run(write)

    async def list_exports(
        self, tenant: str, request_id: str, external_id: str, limit: int, cursor: str
    ) -> ExportPage:
        clause, params = statements.exports_page(
            tenant, request_id, external_id, decode_page_token(cursor) if cursor else None, limit)
        rows = await self._thread.run(lambda db: select(
            db, ExportRow, f"SELECT {EXPORT_COLUMNS} FROM voucher_exports {clause}", params))
        return ExportPage(*split_page([export_record(row) for row in rows], limit,
                                      statements.export_page_token))


#: Ids in one ``IN (...)`` of ``get_many`` (well within SQLite's bound on parameters).
_IDS_PER_READ = 500
#: SQLite's clock as the store keeps times (``rows.iso``: UTC, microseconds), optionally moved
#: by a modifier such as ``'+65.0 seconds'``.
_NOW: LiteralString = "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')"
_RENEW = statements.renew_export("strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now', ?)")
_MARK_CREATED = statements.mark_created(_NOW)
_MARK_UNKNOWN = statements.mark_unknown(_NOW)


def _database_now(db: Database) -> datetime:
    """SQLite's time now (its ``'now'`` has milliseconds)."""
    (text,) = db.execute("SELECT strftime('%Y-%m-%dT%H:%M:%f', 'now')").fetchone()
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _held(rowcount: int) -> None:
    """Raises ``ClaimLost`` when a fenced write found no record of its token."""
    if rowcount != 1:
        raise ClaimLost


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
