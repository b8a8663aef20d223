"""The import history in PostgreSQL, with the voucher digests that tell what changed.

The same rules as ``adapters.sqlite.imports`` (see there): a year is compared with the same
year's digests of the tenant's last successful import; once an import succeeds, older digests
of its years are dropped, a failed import's at once. Digests are kept in batches, a row per
thousands of vouchers; both imports' batches of a year are compared off the event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any, LiteralString

from adapters.postgres.database import (
    Conn,
    PostgresDatabase,
    database_now,
    page_start,
    select,
    select_one,
    sql,
)
from adapters.sql import statements
from adapters.sql.rows import IMPORT_COLUMNS, DigestRow, ImportRow, PreviousYear, import_record
from adapters.sql.statements import STALE_AFTER
from core.clock import Clock, utc_now
from core.imports import (
    ImportedYear,
    ImportKind,
    ImportPage,
    ImportRecord,
    ImportStatus,
    VoucherChanges,
)
from core.paging import split_page
from core.voucher_digest import DigestBatch


class PostgresImportHistory:
    """``core.imports.ImportHistory`` over the ``imports`` tables."""

    def __init__(
        self, db: PostgresDatabase, clock: Clock = utc_now, stale_after: timedelta = STALE_AFTER
    ) -> None:
        self._db = db
        self._clock = clock
        self._stale_after = stale_after
        self._worker_id = uuid.uuid4().hex

    @property
    def heartbeat_every_s(self) -> float:
        """A quarter of the stale period: three missed signals in a row are not yet death."""
        return self._stale_after.total_seconds() / 4

    async def start(
        self, tenant: str, kind: ImportKind, requested_by: str, balance_date: date | None = None
    ) -> ImportRecord:
        now = self._clock()
        import_id = str(uuid.uuid4())
        async with self._db.connection() as conn:
            await conn.execute(
                sql(statements.START_IMPORT),
                (import_id, tenant, kind.value, ImportStatus.RUNNING.value, requested_by, now,
                 await database_now(conn), self._worker_id, balance_date),
            )
            (record,) = await _select(conn, "WHERE tenant = %s AND import_id = %s",
                                      [tenant, import_id])
        return record

    async def heartbeat(self, import_id: str) -> bool:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "UPDATE imports SET heartbeat_at = clock_timestamp()"
                " WHERE import_id = %s AND status = 'running'", (import_id,))
            return cursor.rowcount == 1

    async def add_year(self, import_id: str, year: ImportedYear) -> None:
        async with self._db.transaction() as conn:
            await conn.execute("SELECT 1 FROM imports WHERE import_id = %s FOR UPDATE",
                               (import_id,))
            await conn.execute(
                sql(statements.ADD_YEAR),
                (import_id, year.financial_year_id, year.start_date, year.end_date, year.sha256,
                 year.byte_size, year.voucher_count, year.error_count, year.warning_count,
                 year.ledger, year.open_item_count, import_id),
            )

    async def finish(
        self, import_id: str, status: ImportStatus, reason: str = "", message: str = ""
    ) -> bool:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE imports SET status = %s, finished_at = %s, error_reason = %s,"
                " error_message = %s WHERE import_id = %s AND status = 'running'",
                (status.value, self._clock(), reason, message, import_id),
            )
            if cursor.rowcount and status is not ImportStatus.SUCCEEDED:
                await conn.execute(sql(statements.DROP_DIGESTS),
                                   (import_id,))
        return bool(cursor.rowcount)

    async def drop_superseded(self, import_id: str) -> None:
        async with self._db.connection() as conn:
            await conn.execute(sql(statements.DROP_SUPERSEDED), (import_id, import_id))

    async def get(self, tenant: str, import_id: str) -> ImportRecord | None:
        async with self._db.connection() as conn:
            rows = await _select(conn, "WHERE tenant = %s AND import_id = %s",
                                 [tenant, import_id])
        return rows[0] if rows else None

    async def list_imports(
        self, tenant: str, kind: ImportKind | None, limit: int, cursor: str
    ) -> ImportPage:
        clause, params = statements.imports_page(tenant, kind, page_start(cursor), limit)
        async with self._db.connection() as conn:
            rows = await _select(conn, sql(clause), params)
        return ImportPage(*split_page(rows, limit, statements.import_page_token))

    async def stage_voucher_digests(
        self, import_id: str, financial_year_id: int, digests: DigestBatch
    ) -> None:
        if not len(digests):
            return
        async with self._db.connection() as conn:
            await conn.execute(sql(statements.STAGE_DIGESTS), (
                import_id, financial_year_id, digests.start, digests.keys, digests.digests))

    async def compare_year(
        self, tenant: str, import_id: str, financial_year_id: int, sha256: str
    ) -> VoucherChanges:
        async with self._db.connection() as conn:
            return await _compare_year(conn, tenant, import_id, financial_year_id, sha256)

    async def fail_abandoned(self) -> int:
        async with self._db.transaction() as conn:
            now = await database_now(conn)  # never this replica's clock: see the port
            cursor = await conn.execute(
                sql(statements.FAIL_ABANDONED), (now, now - self._stale_after))
            failed = [row["import_id"] for row in await cursor.fetchall()]
            await conn.execute(
                "DELETE FROM voucher_digest_batches WHERE import_id = ANY(%s)", (failed,))
        return len(failed)


async def _select(conn: Conn, clause: LiteralString, params: list[Any]) -> list[ImportRecord]:
    rows = await select(conn, ImportRow, "SELECT " + IMPORT_COLUMNS + " FROM imports " + clause,
                        params)
    return [import_record(row, tuple(await select(
        conn, ImportedYear, sql(statements.YEARS_OF_IMPORT), (row.import_id,)))) for row in rows]


async def _compare_year(
    conn: Conn, tenant: str, import_id: str, financial_year_id: int, sha256: str
) -> VoucherChanges:
    previous = await select_one(conn, PreviousYear, sql(statements.PREVIOUS_YEAR),
                                (tenant, financial_year_id))
    if previous is None:
        return VoucherChanges(None, None, 0, 0, 0)
    if previous.sha256 == sha256:  # the same bytes: nothing to count
        return previous.unchanged()
    query = sql(statements.DIGESTS_OF_YEAR)
    old = await select(conn, DigestRow, query, (previous.import_id, financial_year_id))
    new = await select(conn, DigestRow, query, (import_id, financial_year_id))
    # Hundreds of thousands of vouchers take a while to compare: not on the event loop.
    return await asyncio.to_thread(previous.changes, old, new)
