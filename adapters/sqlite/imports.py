"""The import history in SQLite, with the voucher digests that tell what changed between imports.

Each import keeps a digest per voucher of each year it read, in batches: a row holds thousands
of vouchers' keys (one text) and digests (one blob), so writing them costs a row per batch, not
per voucher. A year is compared with the same year's digests of the tenant's last successful
import by reading both imports' batches; once an import succeeds, older digests of its years
are dropped, and a failed import's are dropped at once. Every call runs on the history's own
SQLite thread, so digests are written while the event loop goes on parsing.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from adapters.sql import statements
from adapters.sql.rows import IMPORT_COLUMNS, DigestRow, ImportRow, PreviousYear, import_record
from adapters.sql.statements import STALE_AFTER
from adapters.sqlite.database import SqliteThread, database_now, immediate
from adapters.sqlite.rows import iso, iso_day, select, select_one
from core.clock import Clock, utc_now
from core.imports import (
    ImportedYear,
    ImportKind,
    ImportPage,
    ImportRecord,
    ImportStatus,
    VoucherChanges,
)
from core.paging import decode_page_token, split_page
from core.voucher_digest import DigestBatch


class SqliteImportHistory:
    """``core.imports.ImportHistory`` over the store's ``imports`` tables."""

    def __init__(
        self, path: Path, clock: Clock = utc_now, stale_after: timedelta = STALE_AFTER
    ) -> None:
        self._thread = SqliteThread(path)
        self._clock = clock
        self._stale_after = stale_after
        self._worker_id = uuid.uuid4().hex

    async def aclose(self) -> None:
        """Closes the connection after the calls already queued (an import's clean-up)."""
        await self._thread.aclose()

    @property
    def heartbeat_every_s(self) -> float:
        """A quarter of the stale period: three missed signals in a row are not yet death."""
        return self._stale_after.total_seconds() / 4

    async def start(
        self, tenant: str, kind: ImportKind, requested_by: str, balance_date: date | None = None
    ) -> ImportRecord:
        now = iso(self._clock())
        import_id = str(uuid.uuid4())

        def write(db: Database) -> ImportRecord:
            db.execute(
                statements.START_IMPORT,
                [import_id, tenant, kind.value, ImportStatus.RUNNING.value, requested_by, now,
                 iso(database_now(db)), self._worker_id, iso_day(balance_date)],
            )
            (record,) = _select(db, "WHERE tenant = ? AND import_id = ?", [tenant, import_id])
            return record
        return await self._thread.run(write)

    async def heartbeat(self, import_id: str) -> bool:
        def write(db: Database) -> bool:
            with immediate(db):
                return db.execute(statements.HEARTBEAT, [iso(database_now(db)), import_id]
                                  ).rowcount == 1
        return await self._thread.run(write)

    async def add_year(self, import_id: str, year: ImportedYear) -> None:
        await self._thread.run(lambda db: db.execute(
            statements.ADD_YEAR,
            [import_id, year.financial_year_id, iso_day(year.start_date),
             iso_day(year.end_date), year.sha256, year.byte_size, year.voucher_count,
             year.error_count, year.warning_count, year.ledger, year.open_item_count,
             import_id],
        ))

    async def finish(
        self, import_id: str, status: ImportStatus, reason: str = "", message: str = ""
    ) -> bool:
        def write(db: Database) -> bool:
            with immediate(db):
                found = db.execute(
                    "SELECT status FROM imports WHERE import_id = ?", [import_id]
                ).fetchone()
                if found != (ImportStatus.RUNNING.value,):  # unknown, or finished already
                    return False
                db.execute(
                    "UPDATE imports SET status = ?, finished_at = ?, error_reason = ?,"
                    " error_message = ? WHERE import_id = ?",
                    [status.value, iso(self._clock()), reason, message, import_id],
                )
                if status is not ImportStatus.SUCCEEDED:
                    db.execute(statements.DROP_DIGESTS, [import_id])
            return True
        return await self._thread.run(write)

    async def drop_superseded(self, import_id: str) -> None:
        def write(db: Database) -> None:
            with immediate(db):
                db.execute(statements.DROP_SUPERSEDED, [import_id, import_id])
        await self._thread.run(write)

    async def get(self, tenant: str, import_id: str) -> ImportRecord | None:
        rows = await self._thread.run(
            lambda db: _select(db, "WHERE tenant = ? AND import_id = ?", [tenant, import_id]))
        return rows[0] if rows else None

    async def list_imports(
        self, tenant: str, kind: ImportKind | None, limit: int, cursor: str
    ) -> ImportPage:
        clause, params = statements.imports_page(
            tenant, kind, decode_page_token(cursor) if cursor else None, limit)
        rows = await self._thread.run(lambda db: _select(db, clause, params))
        return ImportPage(*split_page(rows, limit, statements.import_page_token))

    async def stage_voucher_digests(
        self, import_id: str, financial_year_id: int, digests: DigestBatch
    ) -> None:
        if not len(digests):
            return
        row = [import_id, financial_year_id, digests.start, digests.keys, digests.digests]
        await self._thread.run(lambda db: db.execute(statements.STAGE_DIGESTS, row))

    async def compare_year(
        self, tenant: str, import_id: str, financial_year_id: int, sha256: str
    ) -> VoucherChanges:
        return await self._thread.run(
            lambda db: _compare_year(db, tenant, import_id, financial_year_id, sha256))

    async def fail_abandoned(self) -> int:
        stale_after = self._stale_after

        def write(db: Database) -> int:
            with immediate(db):
                now = database_now(db)  # never this replica's clock: see the port
                cursor = db.execute(
                    statements.FAIL_ABANDONED, [iso(now), iso(now - stale_after)])
                failed = [import_id for (import_id,) in cursor.fetchall()]
                db.conn.executemany(statements.DROP_DIGESTS, [(i,) for i in failed])
            return len(failed)
        return await self._thread.run(write)


def _select(db: Database, clause: str, params: list[Any]) -> list[ImportRecord]:
    rows = select(db, ImportRow, f"SELECT {IMPORT_COLUMNS} FROM imports {clause}", params)
    return [import_record(row, tuple(select(db, ImportedYear, statements.YEARS_OF_IMPORT,
                                            [row.import_id]))) for row in rows]


def _compare_year(
    db: Database, tenant: str, import_id: str, financial_year_id: int, sha256: str
) -> VoucherChanges:
    previous = select_one(db, PreviousYear, statements.PREVIOUS_YEAR, [tenant, financial_year_id])
    if previous is None:
        return VoucherChanges(None, None, 0, 0, 0)
    if previous.sha256 == sha256:  # the same bytes: nothing to count
        return previous.unchanged()
    return previous.changes(
        select(db, DigestRow, statements.DIGESTS_OF_YEAR, [previous.import_id, financial_year_id]),
        select(db, DigestRow, statements.DIGESTS_OF_YEAR, [import_id, financial_year_id]))
