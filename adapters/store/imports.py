"""The import history in SQLite, with the voucher digests that tell what changed between imports.

Each import keeps a digest per voucher of each year it read. A year is compared with the same
year's digests of the tenant's last successful import, by primary-key lookups; once an import
succeeds, older digests of its years are dropped, and a failed import's are dropped at once.
Every call runs on the history's own SQLite thread, so digests are written while the event
loop goes on parsing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from itertools import repeat
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from adapters.store.database import SqliteThread, immediate
from core.clock import Clock, utc_now
from core.imports import (
    ImportedYear,
    ImportKind,
    ImportPage,
    ImportRecord,
    ImportStatus,
    VoucherChanges,
)
from core.paging import decode_page_token, encode_page_token, split_page

#: An import whose worker has not signalled for this long is taken to have died with it.
STALE_AFTER = timedelta(seconds=60)


def _pseudo(column: str, pseudo: bool) -> str:
    """Keys that start with ``~`` (fingerprints of things other than vouchers, e.g. the
    stated balances), or all others; as a range, so the primary key's index serves it."""
    test = f"({column} >= '~' AND {column} < char(127))"
    return test if pseudo else f"NOT {test}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _opt_iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _opt_date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


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
        now = _iso(self._clock())
        import_id = str(uuid.uuid4())

        def write(db: Database) -> ImportRecord:
            db.execute(
                "INSERT INTO imports (import_id, tenant, kind, status, requested_by, started_at,"
                " heartbeat_at, worker_id, balance_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [import_id, tenant, kind.value, ImportStatus.RUNNING.value, requested_by, now,
                 now, self._worker_id, _opt_iso(balance_date)],
            )
            (record,) = _select(db, "WHERE tenant = ? AND import_id = ?", [tenant, import_id])
            return record
        return await self._thread.run(write)

    async def heartbeat(self, import_id: str) -> None:
        await self._thread.run(lambda db: db.execute(
            "UPDATE imports SET heartbeat_at = ? WHERE import_id = ? AND status = 'running'",
            [_iso(self._clock()), import_id],
        ))

    async def add_year(self, import_id: str, year: ImportedYear) -> None:
        await self._thread.run(lambda db: db.execute(
            "INSERT INTO import_years (import_id, position, financial_year_id, start_date,"
            " end_date, sha256, byte_size, voucher_count, error_count, warning_count,"
            " ledger, open_item_count) SELECT ?, COALESCE(MAX(position), -1) + 1, ?, ?, ?,"
            " ?, ?, ?, ?, ?, ?, ? FROM import_years WHERE import_id = ?",
            [import_id, year.financial_year_id, _opt_iso(year.start_date),
             _opt_iso(year.end_date), year.sha256, year.byte_size, year.voucher_count,
             year.error_count, year.warning_count, year.ledger, year.open_item_count,
             import_id],
        ))

    async def finish(
        self, import_id: str, status: ImportStatus, reason: str = "", message: str = ""
    ) -> None:
        def write(db: Database) -> None:
            with immediate(db):
                row = db.execute(
                    "SELECT tenant, status FROM imports WHERE import_id = ?", [import_id]
                ).fetchone()
                if row is None or row[1] != ImportStatus.RUNNING.value:
                    return
                db.execute(
                    "UPDATE imports SET status = ?, finished_at = ?, error_reason = ?,"
                    " error_message = ? WHERE import_id = ?",
                    [status.value, _iso(self._clock()), reason, message, import_id],
                )
                if status is not ImportStatus.SUCCEEDED:
                    db.execute("DELETE FROM voucher_digests WHERE import_id = ?", [import_id])
        await self._thread.run(write)

    async def drop_superseded(self, import_id: str) -> None:
        def write(db: Database) -> None:
            with immediate(db):
                db.execute(
                    "DELETE FROM voucher_digests WHERE import_id IN (SELECT i.import_id FROM"
                    " imports i JOIN imports this ON this.import_id = ? AND i.tenant ="
                    " this.tenant WHERE i.import_id != this.import_id AND i.status != 'running')"
                    " AND financial_year_id IN (SELECT financial_year_id FROM import_years"
                    " WHERE import_id = ?)",
                    [import_id, import_id],
                )
        await self._thread.run(write)

    async def get(self, tenant: str, import_id: str) -> ImportRecord | None:
        rows = await self._thread.run(
            lambda db: _select(db, "WHERE tenant = ? AND import_id = ?", [tenant, import_id]))
        return rows[0] if rows else None

    async def list_imports(
        self, tenant: str, kind: ImportKind | None, limit: int, cursor: str
    ) -> ImportPage:
        where, params = "WHERE tenant = ?", [tenant]
        if kind is not None:
            where += " AND kind = ?"
            params.append(kind.value)
        if cursor:
            started_at, import_id = _decode_cursor(cursor)
            where += " AND (started_at, import_id) < (?, ?)"
            params += [started_at, import_id]
        clause = where + " ORDER BY started_at DESC, import_id DESC LIMIT ?"
        rows = await self._thread.run(lambda db: _select(db, clause, [*params, limit + 1]))
        return ImportPage(*split_page(rows, limit, _encode_cursor))

    async def stage_voucher_digests(
        self, import_id: str, financial_year_id: int, digests: Iterable[tuple[str, str]]
    ) -> None:
        pairs = list(digests)
        if not pairs:
            return
        keys, values = zip(*pairs, strict=True)
        rows = zip(repeat(import_id), repeat(financial_year_id), keys, values, strict=False)

        def write(db: Database) -> None:
            with immediate(db):
                db.conn.executemany(
                    "INSERT OR REPLACE INTO voucher_digests (import_id, financial_year_id,"
                    " voucher_key, digest) VALUES (?, ?, ?, ?)",
                    rows,
                )
        await self._thread.run(write)

    async def compare_year(
        self, tenant: str, import_id: str, financial_year_id: int, sha256: str
    ) -> VoucherChanges:
        return await self._thread.run(
            lambda db: _compare_year(db, tenant, import_id, financial_year_id, sha256))

    async def fail_abandoned(self) -> int:
        now = self._clock()
        stale_after = self._stale_after

        def write(db: Database) -> int:
            with immediate(db):
                cursor = db.execute(
                    "UPDATE imports SET status = 'failed', finished_at = ?, error_reason ="
                    " 'IMPORT_INTERRUPTED', error_message = 'The service stopped during the"
                    " import.' WHERE status = 'running' AND heartbeat_at < ? RETURNING import_id",
                    [_iso(now), _iso(now - stale_after)],
                )
                failed = [row[0] for row in cursor.fetchall()]
                db.conn.executemany(
                    "DELETE FROM voucher_digests WHERE import_id = ?", [(i,) for i in failed]
                )
            return len(failed)
        return await self._thread.run(write)


def _select(db: Database, clause: str, params: list[Any]) -> list[ImportRecord]:
    columns = ("import_id, tenant, kind, status, requested_by, started_at, finished_at,"
               " error_reason, error_message, balance_date")
    rows = list(db.execute(f"SELECT {columns} FROM imports {clause}", params))
    return [_record(db, row) for row in rows]


def _record(db: Database, row: tuple[Any, ...]) -> ImportRecord:
    years = tuple(
        ImportedYear(
            financial_year_id=y[0], start_date=_opt_date(y[1]), end_date=_opt_date(y[2]),
            sha256=y[3], byte_size=y[4], voucher_count=y[5], error_count=y[6],
            warning_count=y[7], ledger=y[8], open_item_count=y[9],
        )
        for y in db.execute(
            "SELECT financial_year_id, start_date, end_date, sha256, byte_size,"
            " voucher_count, error_count, warning_count, ledger, open_item_count"
            " FROM import_years WHERE import_id = ? ORDER BY position",
            [row[0]],
        )
    )
    return ImportRecord(
        import_id=row[0], tenant=row[1], kind=ImportKind(row[2]),
        status=ImportStatus(row[3]), requested_by=row[4],
        started_at=datetime.fromisoformat(row[5]),
        finished_at=datetime.fromisoformat(row[6]) if row[6] else None,
        error_reason=row[7], error_message=row[8], years=years,
        balance_date=_opt_date(row[9]),
    )


def _compare_year(
    db: Database, tenant: str, import_id: str, financial_year_id: int, sha256: str
) -> VoucherChanges:
    previous = db.execute(
        "SELECT y.import_id, y.sha256 FROM import_years y JOIN imports i USING"
        " (import_id) WHERE i.tenant = ? AND i.status = 'succeeded' AND i.kind = 'sie'"
        " AND y.financial_year_id = ? ORDER BY i.started_at DESC LIMIT 1",
        [tenant, financial_year_id],
    ).fetchone()
    if previous is None:
        return VoucherChanges(None, None, 0, 0, 0)
    old, old_sha = previous
    if old_sha == sha256:  # the same bytes: nothing to count
        return VoucherChanges(old, old_sha, 0, 0, 0)
    kept = _count(db, old, financial_year_id, pseudo=False)
    if not kept and not _count(db, old, financial_year_id, pseudo=True):
        return VoucherChanges(old, old_sha, 0, 0, 0, counted=False)
    added, changed, matched = _matches(db, old, import_id, financial_year_id, False)
    _, other_changed, _ = _matches(db, old, import_id, financial_year_id, True)
    return VoucherChanges(
        previous_import_id=old, previous_sha256=old_sha, added=added, changed=changed,
        removed=kept - matched, other_changed=bool(other_changed),
    )


def _count(db: Database, import_id: str, year: int, *, pseudo: bool) -> int:
    """How many fingerprints of vouchers (or of other things) an import kept for a year."""
    (count,) = db.execute(
        f"SELECT COUNT(*) FROM voucher_digests WHERE import_id = ?"
        f" AND financial_year_id = ? AND {_pseudo('voucher_key', pseudo)}",
        [import_id, year],
    ).fetchone()
    return int(count)


def _matches(db: Database, old: str, new: str, year: int, pseudo: bool) -> tuple[int, int, int]:
    """(added, changed, found in both) going from one import's fingerprints to another's."""
    added, changed, matched = db.execute(
        "SELECT SUM(b.voucher_key IS NULL), SUM(b.digest != a.digest),"
        " SUM(b.voucher_key IS NOT NULL) FROM voucher_digests a LEFT JOIN voucher_digests b"
        " ON b.import_id = ? AND b.financial_year_id = a.financial_year_id"
        " AND b.voucher_key = a.voucher_key WHERE a.import_id = ?"
        f" AND a.financial_year_id = ? AND {_pseudo('a.voucher_key', pseudo)}",
        [old, new, year],
    ).fetchone()
    return added or 0, changed or 0, matched or 0


def _encode_cursor(record: ImportRecord) -> str:
    return encode_page_token(record.started_at, record.import_id)


def _decode_cursor(cursor: str) -> tuple[str, str]:
    return decode_page_token(cursor)
