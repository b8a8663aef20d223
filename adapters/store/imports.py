"""The import history in SQLite, with the voucher digests that tell what changed between imports."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Any

from sqlite_utils import Database

from core.errors import InvalidRequest
from core.imports import (
    ImportedYear,
    ImportKind,
    ImportPage,
    ImportRecord,
    ImportStatus,
    VoucherChanges,
)

Clock = Callable[[], datetime]

#: An import whose worker has not signalled for this long is taken to have died with it.
STALE_AFTER = timedelta(seconds=60)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _opt_date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


class SqliteImportHistory:
    """``core.imports.ImportHistory`` over the store's ``imports`` tables."""

    def __init__(self, db: Database, clock: Clock = _utc_now) -> None:
        self._db = db
        self._clock = clock
        self._worker_id = uuid.uuid4().hex

    def start(
        self, tenant: str, kind: ImportKind, requested_by: str, balance_date: date | None = None
    ) -> ImportRecord:
        now = _iso(self._clock())
        import_id = str(uuid.uuid4())
        self._db.execute(
            "INSERT INTO imports (import_id, tenant, kind, status, requested_by, started_at,"
            " heartbeat_at, worker_id, balance_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [import_id, tenant, kind.value, ImportStatus.RUNNING.value, requested_by, now, now,
             self._worker_id, balance_date.isoformat() if balance_date else None],
        )
        record = self.get(tenant, import_id)
        assert record is not None
        return record

    def heartbeat(self, import_id: str) -> None:
        self._db.execute(
            "UPDATE imports SET heartbeat_at = ? WHERE import_id = ? AND status = 'running'",
            [_iso(self._clock()), import_id],
        )

    def add_year(self, import_id: str, year: ImportedYear) -> None:
        self._db.execute(
            "INSERT INTO import_years (import_id, position, financial_year_id, start_date,"
            " end_date, sha256, byte_size, voucher_count, error_count, warning_count, ledger,"
            " open_item_count) SELECT ?, COALESCE(MAX(position), -1) + 1, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ? FROM import_years WHERE import_id = ?",
            [import_id, year.financial_year_id,
             year.start_date.isoformat() if year.start_date else None,
             year.end_date.isoformat() if year.end_date else None, year.sha256, year.byte_size,
             year.voucher_count, year.error_count, year.warning_count, year.ledger,
             year.open_item_count, import_id],
        )

    def finish(
        self, import_id: str, status: ImportStatus, reason: str = "", message: str = ""
    ) -> None:
        with self._db.atomic():
            row = self._db.execute(
                "SELECT tenant, status FROM imports WHERE import_id = ?", [import_id]
            ).fetchone()
            if row is None or row[1] != ImportStatus.RUNNING.value:
                return
            tenant = row[0]
            self._db.execute(
                "UPDATE imports SET status = ?, finished_at = ?, error_reason = ?,"
                " error_message = ? WHERE import_id = ?",
                [status.value, _iso(self._clock()), reason, message, import_id],
            )
            if status is ImportStatus.SUCCEEDED:
                self._promote_digests(tenant, import_id)
            self._db.execute(
                "DELETE FROM voucher_digests_staging WHERE import_id = ?", [import_id]
            )

    def _promote_digests(self, tenant: str, import_id: str) -> None:
        self._db.execute(
            "DELETE FROM voucher_digests WHERE tenant = ? AND financial_year_id IN"
            " (SELECT DISTINCT financial_year_id FROM import_years WHERE import_id = ?)",
            [tenant, import_id],
        )
        self._db.execute(
            "INSERT INTO voucher_digests (tenant, financial_year_id, voucher_key, digest,"
            " import_id) SELECT ?, financial_year_id, voucher_key, digest, import_id"
            " FROM voucher_digests_staging WHERE import_id = ?",
            [tenant, import_id],
        )

    def get(self, tenant: str, import_id: str) -> ImportRecord | None:
        rows = self._select("WHERE tenant = ? AND import_id = ?", [tenant, import_id])
        return rows[0] if rows else None

    def list_imports(
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
        rows = self._select(where + " ORDER BY started_at DESC, import_id DESC LIMIT ?",
                            [*params, limit + 1])
        page = tuple(rows[:limit])
        more = len(rows) > limit
        return ImportPage(page, _encode_cursor(page[-1]) if more and page else "")

    def _select(self, clause: str, params: list[Any]) -> list[ImportRecord]:
        columns = ("import_id, tenant, kind, status, requested_by, started_at, finished_at,"
                   " error_reason, error_message, balance_date")
        records = []
        for row in self._db.execute(f"SELECT {columns} FROM imports {clause}", params):
            years = tuple(
                ImportedYear(
                    financial_year_id=y[0], start_date=_opt_date(y[1]), end_date=_opt_date(y[2]),
                    sha256=y[3], byte_size=y[4], voucher_count=y[5], error_count=y[6],
                    warning_count=y[7], ledger=y[8], open_item_count=y[9],
                )
                for y in self._db.execute(
                    "SELECT financial_year_id, start_date, end_date, sha256, byte_size,"
                    " voucher_count, error_count, warning_count, ledger, open_item_count"
                    " FROM import_years WHERE import_id = ? ORDER BY position",
                    [row[0]],
                )
            )
            records.append(ImportRecord(
                import_id=row[0], tenant=row[1], kind=ImportKind(row[2]),
                status=ImportStatus(row[3]), requested_by=row[4],
                started_at=datetime.fromisoformat(row[5]),
                finished_at=datetime.fromisoformat(row[6]) if row[6] else None,
                error_reason=row[7], error_message=row[8], years=years,
                balance_date=_opt_date(row[9]),
            ))
        return records

    def stage_voucher_digests(
        self, import_id: str, financial_year_id: int, digests: Iterable[tuple[str, str]]
    ) -> None:
        pairs = iter(digests)
        while batch := list(islice(pairs, 1000)):
            with self._db.atomic():
                self._db.conn.executemany(
                    "INSERT OR REPLACE INTO voucher_digests_staging (import_id, financial_year_id,"
                    " voucher_key, digest) VALUES (?, ?, ?, ?)",
                    [(import_id, financial_year_id, key, digest) for key, digest in batch],
                )

    def compare_year(self, tenant: str, import_id: str, financial_year_id: int) -> VoucherChanges:
        previous = self._db.execute(
            "SELECT y.import_id, y.sha256 FROM import_years y JOIN imports i USING (import_id)"
            " WHERE i.tenant = ? AND i.status = 'succeeded' AND y.financial_year_id = ?"
            " AND i.kind = 'sie' ORDER BY i.started_at DESC LIMIT 1",
            [tenant, financial_year_id],
        ).fetchone()
        if previous is None:
            return VoucherChanges(None, None, 0, 0, 0)
        old = ("SELECT voucher_key, digest FROM voucher_digests"
               " WHERE tenant = ? AND financial_year_id = ?")
        new = ("SELECT voucher_key, digest FROM voucher_digests_staging"
               " WHERE import_id = ? AND financial_year_id = ?")
        voucher = "NOT LIKE '~%'"
        counts: dict[bool, tuple[int, int, int]] = {}
        for vouchers_only in (True, False):
            match = voucher if vouchers_only else "LIKE '~%'"
            added, changed = self._db.execute(
                f"SELECT SUM(o.voucher_key IS NULL), SUM(o.digest != n.digest)"
                f" FROM ({new}) n LEFT JOIN ({old}) o USING (voucher_key)"
                f" WHERE n.voucher_key {match}",
                [import_id, financial_year_id, tenant, financial_year_id],
            ).fetchone()
            (removed,) = self._db.execute(
                f"SELECT COUNT(*) FROM ({old}) o LEFT JOIN ({new}) n USING (voucher_key)"
                f" WHERE n.voucher_key IS NULL AND o.voucher_key {match}",
                [tenant, financial_year_id, import_id, financial_year_id],
            ).fetchone()
            counts[vouchers_only] = (added or 0, changed or 0, removed)
        return VoucherChanges(
            previous_import_id=previous[0],
            previous_sha256=previous[1],
            added=counts[True][0],
            changed=counts[True][1],
            removed=counts[True][2],
            other_changed=any(counts[False]),
        )

    def fail_abandoned(self, stale_after: timedelta = STALE_AFTER) -> int:
        """Marks running imports whose worker stopped signalling as failed; returns how many."""
        now = self._clock()
        cursor = self._db.execute(
            "UPDATE imports SET status = 'failed', finished_at = ?, error_reason ="
            " 'IMPORT_INTERRUPTED', error_message = 'The service stopped during the import.'"
            " WHERE status = 'running' AND heartbeat_at < ?",
            [_iso(now), _iso(now - stale_after)],
        )
        self._db.execute(
            "DELETE FROM voucher_digests_staging WHERE import_id NOT IN"
            " (SELECT import_id FROM imports WHERE status = 'running')"
        )
        return int(cursor.rowcount)


def _encode_cursor(record: ImportRecord) -> str:
    raw = f"{record.started_at.isoformat(timespec='microseconds')}|{record.import_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        started_at, import_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("page_token is not one this service issued.") from exc
    return started_at, import_id
