"""The voucher export record in SQLite: ``export_requests`` and ``voucher_exports``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from adapters.store.database import SqliteThread, immediate
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

_COLUMNS = ("tenant, external_id, request_id, payload_sha256, marker, status, voucher_series,"
            " voucher_number, financial_year_id, reason, message, fortnox_code, fortnox_message,"
            " requested_by, attempted_at, exported_at, worker_id, lease_expires_at")
_OUTCOMES = {ExportStatus.CREATED: Outcome.CREATED, ExportStatus.REJECTED: Outcome.REJECTED}
_UNSETTLED_TEXT = {
    ExportStatus.PENDING: ("EXPORT_PENDING", "The voucher was about to be posted."),
    ExportStatus.UNKNOWN: ("FORTNOX_OUTCOME_UNKNOWN", "Fortnox's answer to the POST was lost."),
}



def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


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
                [tenant, request_id, payload_sha256, requested_by, _iso(self._clock())],
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
            [_iso(self._clock()), tenant, request_id],
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
                db.execute(
                    "INSERT INTO voucher_exports (tenant, external_id, request_id,"
                    " payload_sha256, marker, status, financial_year_id, requested_by,"
                    " attempted_at, worker_id, lease_expires_at)"
                    " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)"
                    " ON CONFLICT (tenant, external_id) DO UPDATE SET"
                    " request_id = excluded.request_id, payload_sha256 = excluded.payload_sha256,"
                    " marker = excluded.marker, status = 'pending', voucher_series = '',"
                    " voucher_number = 0, financial_year_id = excluded.financial_year_id,"
                    " reason = '', message = '', fortnox_code = '', fortnox_message = '',"
                    " requested_by = excluded.requested_by, attempted_at = excluded.attempted_at,"
                    " exported_at = NULL, worker_id = excluded.worker_id,"
                    " lease_expires_at = excluded.lease_expires_at",
                    [tenant, external_id, request_id, payload_sha256, marker, financial_year_id,
                     requested_by, _iso(now), owner, _iso(now + lease)],
                )
                return ExportClaim(ClaimStatus.TAKEN, found)
        return await self._thread.run(take)

    async def mark_unknown(self, tenant: str, external_id: str) -> None:
        await self._thread.run(lambda db: db.execute(
            "UPDATE voucher_exports SET status = 'unknown', lease_expires_at = ?"
            " WHERE tenant = ? AND external_id = ? AND status = 'pending'",
            [_iso(self._clock()), tenant, external_id],
        ))

    async def mark_created(
        self, tenant: str, external_id: str, series: str, number: int, financial_year_id: int
    ) -> VoucherResult:
        def write(db: Database) -> VoucherResult:
            db.execute(
                "UPDATE voucher_exports SET status = 'created', voucher_series = ?,"
                " voucher_number = ?, financial_year_id = ?, exported_at = ?,"
                " lease_expires_at = NULL WHERE tenant = ? AND external_id = ?",
                [series, number, financial_year_id, _iso(self._clock()), tenant, external_id],
            )
            return _result(db, tenant, external_id)
        return await self._thread.run(write)

    async def mark_rejected(
        self, tenant: str, external_id: str, reason: str, message: str, fortnox_code: str,
        fortnox_message: str,
    ) -> VoucherResult:
        def write(db: Database) -> VoucherResult:
            db.execute(
                "UPDATE voucher_exports SET status = 'rejected', reason = ?, message = ?,"
                " fortnox_code = ?, fortnox_message = ?, lease_expires_at = NULL"
                " WHERE tenant = ? AND external_id = ?",
                [reason, message, fortnox_code, fortnox_message, tenant, external_id],
            )
            return _result(db, tenant, external_id)
        return await self._thread.run(write)

    async def list_exports(
        self, tenant: str, request_id: str, external_id: str, limit: int, cursor: str
    ) -> ExportPage:
        where, params = "WHERE tenant = ?", [tenant]
        if request_id:
            where += " AND request_id = ?"
            params.append(request_id)
        if external_id:
            where += " AND external_id = ?"
            params.append(external_id)
        if cursor:
            where += " AND (attempted_at, external_id) < (?, ?)"
            params += list(_decode_cursor(cursor))
        rows = await self._thread.run(lambda db: db.execute(
            f"SELECT {_COLUMNS} FROM voucher_exports {where}"
            " ORDER BY attempted_at DESC, external_id DESC LIMIT ?",
            [*params, limit + 1],
        ).fetchall())
        return ExportPage(*split_page([_record(row) for row in rows], limit, _encode_cursor))


def _digest(db: Database, tenant: str, request_id: str) -> str | None:
    row = db.execute(
        "SELECT payload_sha256 FROM export_requests WHERE tenant = ? AND request_id = ?",
        [tenant, request_id],
    ).fetchone()
    return str(row[0]) if row else None


def _get(db: Database, tenant: str, external_id: str) -> ExportRecord | None:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM voucher_exports WHERE tenant = ? AND external_id = ?",
        [tenant, external_id],
    ).fetchone()
    return _record(row) if row else None


def _result(db: Database, tenant: str, external_id: str) -> VoucherResult:
    record = _get(db, tenant, external_id)
    assert record is not None, "marked records exist"
    return record.result


def _record(row: Any) -> ExportRecord:
    status = ExportStatus(row[5])
    reason, message = _UNSETTLED_TEXT.get(status, (row[9], row[10]))
    result = VoucherResult(
        external_id=row[1],
        outcome=_OUTCOMES.get(status, Outcome.NOT_ATTEMPTED),
        series=row[6],
        number=row[7],
        financial_year_id=row[8],
        reason=reason,
        message=message,
        fortnox_code=row[11],
        fortnox_message=row[12],
        exported_at=datetime.fromisoformat(row[15]) if row[15] else None,
        request_id=row[2],
    )
    return ExportRecord(
        tenant=row[0], external_id=row[1], request_id=row[2], payload_sha256=row[3],
        marker=row[4], status=status, result=result, requested_by=row[13],
        attempted_at=datetime.fromisoformat(row[14]), owner=row[16],
        lease_expires_at=datetime.fromisoformat(row[17]) if row[17] else None,
    )


def _encode_cursor(record: ExportRecord) -> str:
    return encode_page_token(record.attempted_at, record.external_id)


def _decode_cursor(cursor: str) -> tuple[str, str]:
    return decode_page_token(cursor)
