"""The change feed in the SQLite file: the holder lease judged by SQLite's own clock, the
offsets and book changes written together, and the watched tenants.

Every write runs in ``BEGIN IMMEDIATE``: SQLite takes one writer at a time, so a take-over and
a stale holder's write are ordered, and the write proves the holder's generation inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlite_utils import Database

from adapters.sql.feed_rows import (
    CHANGE_COLUMNS,
    HOLDER,
    OURS,
    SETTLING,
    WATCH_COLUMNS,
    ChangeRow,
    TargetRow,
    WatchRow,
    YearRow,
    kind_of,
    last_offsets,
)
from adapters.sqlite.database import SqliteThread, immediate
from adapters.sqlite.rows import iso, select, select_one
from core.clock import Clock, utc_now
from core.feed.model import BookChange, FeedEvent, Watch, WatchTarget, YearChanges
from core.feed.ports import HolderLost, Holding

#: Now, in epoch seconds, by SQLite's clock (the one every process sharing the file reads).
_NOW = "((julianday('now') - 2440587.5) * 86400.0)"


class SqliteFeedStore:
    """``HolderStore``, ``WatchStore`` and ``ChangeStore`` on one connection and thread."""

    def __init__(self, path: Path, clock: Clock = utc_now) -> None:
        self._thread = SqliteThread(path)
        self._clock = clock

    async def aclose(self) -> None:
        """Closes the connection after the calls already queued."""
        await self._thread.aclose()

    # -- the holder lease ------------------------------------------------------------------

    async def take_holder(self, owner: str, lease_s: float) -> Holding | None:
        def take(db: Database) -> Holding | None:
            with immediate(db):
                row = db.execute(
                    f"SELECT owner, generation, expires_at > {_NOW} FROM feed_holder"
                    " WHERE name = ?", [HOLDER]).fetchone()
                if row is None:
                    db.execute("INSERT INTO feed_holder (name, owner, generation, expires_at)"
                               f" VALUES (?, ?, 1, {_NOW} + ?)", [HOLDER, owner, lease_s])
                    return Holding(owner, 1)
                previous, generation, live = row
                if live and previous != owner:
                    return None
                db.execute(f"UPDATE feed_holder SET owner = ?, generation = ?,"
                           f" expires_at = {_NOW} + ? WHERE name = ?",
                           [owner, generation + 1, lease_s, HOLDER])
                return Holding(owner, generation + 1, took_over=previous != owner)
        return await self._thread.run(take)

    async def renew_holder(self, holding: Holding, lease_s: float) -> bool:
        def renew(db: Database) -> bool:
            with immediate(db):
                cursor = db.execute(
                    f"UPDATE feed_holder SET expires_at = {_NOW} + ?"
                    " WHERE name = ? AND owner = ? AND generation = ?",
                    [lease_s, HOLDER, holding.owner, holding.generation])
                return cursor.rowcount == 1
        return await self._thread.run(renew)

    async def release_holder(self, holding: Holding) -> None:
        def release(db: Database) -> None:
            with immediate(db):
                db.execute("UPDATE feed_holder SET expires_at = 0"
                           " WHERE name = ? AND owner = ? AND generation = ?",
                           [HOLDER, holding.owner, holding.generation])
        await self._thread.run(release)

    async def offsets(self) -> dict[str, str]:
        def read(db: Database) -> dict[str, str]:
            return dict(db.execute("SELECT topic, last_offset FROM feed_offsets").fetchall())
        return await self._thread.run(read)

    async def record(self, holding: Holding, events: Sequence[FeedEvent]) -> int:
        now = iso(self._clock())

        def write(db: Database) -> int:
            with immediate(db):
                proof = db.execute(
                    "SELECT 1 FROM feed_holder WHERE name = ? AND owner = ? AND generation = ?",
                    [HOLDER, holding.owner, holding.generation]).fetchone()
                if proof is None:
                    raise HolderLost()
                before = db.conn.total_changes
                for e in events:
                    db.execute(
                        "INSERT OR IGNORE INTO book_changes (tenant, topic, event_offset,"
                        " event_type, kind, entity_id, fortnox_tenant_id, financial_year_id,"
                        " voucher_series, voucher_number, occurred_at, recorded_at)"
                        " SELECT w.tenant, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM feed_watches w"
                        " WHERE w.feed_tenant_id = ? AND w.state = 'watching'",
                        [e.topic, e.offset, e.event_type, kind_of(e), e.entity_id,
                         e.fortnox_tenant_id, e.financial_year_id, e.voucher_series,
                         e.voucher_number, iso(e.occurred_at), now, e.fortnox_tenant_id])
                added = db.conn.total_changes - before
                for topic, offset in last_offsets(list(events)).items():
                    db.execute(
                        "INSERT INTO feed_offsets (topic, last_offset, generation, updated_at)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT (topic) DO UPDATE SET"
                        " last_offset = excluded.last_offset, generation = excluded.generation,"
                        " updated_at = excluded.updated_at",
                        [topic, offset, holding.generation, now])
                return added
        return await self._thread.run(write)

    # -- watches, as the holder keeps them -------------------------------------------------

    async def watch_targets(self, now: datetime) -> list[WatchTarget]:
        def read(db: Database) -> list[WatchTarget]:
            rows = select(
                db, TargetRow,
                "SELECT w.tenant, w.feed_tenant_id, w.token_expires_at,"
                " COALESCE(c.state, 'REVOKED') AS connection_state,"
                " COALESCE(c.state_reason, '') AS connection_reason"
                " FROM feed_watches w LEFT JOIN connections c ON c.tenant = w.tenant"
                " WHERE w.state = 'watching' AND w.expires_at > ? ORDER BY w.tenant",
                [iso(now)])
            return [row.target() for row in rows]
        return await self._thread.run(read)

    async def end_expired_watches(self, now: datetime) -> list[str]:
        def end(db: Database) -> list[str]:
            with immediate(db):
                rows = db.execute(
                    "UPDATE feed_watches SET state = 'ended', ended_at = ?,"
                    " reason = 'The watch expired.'"
                    " WHERE state = 'watching' AND expires_at <= ? RETURNING tenant",
                    [iso(now), iso(now)]).fetchall()
            return [tenant for (tenant,) in rows]
        return await self._thread.run(end)

    async def watch_added(self, tenant: str, feed_tenant_id: int,
                          token_expires_at: datetime | None, now: datetime) -> None:
        def note(db: Database) -> None:
            with immediate(db):
                db.execute(
                    "UPDATE feed_watches SET feed_tenant_id = ?, token_expires_at = ?,"
                    " added_at = ?, reason = '' WHERE tenant = ? AND state = 'watching'",
                    [feed_tenant_id, token_expires_at and iso(token_expires_at), iso(now),
                     tenant])
        await self._thread.run(note)

    async def end_watch(self, tenant: str, reason: str, now: datetime) -> None:
        def end(db: Database) -> None:
            with immediate(db):
                db.execute("UPDATE feed_watches SET state = 'ended', reason = ?, ended_at = ?"
                           " WHERE tenant = ? AND state = 'watching'",
                           [reason, iso(now), tenant])
        await self._thread.run(end)

    async def note_watch(self, tenant: str, reason: str) -> None:
        def note(db: Database) -> None:
            with immediate(db):
                db.execute("UPDATE feed_watches SET reason = ?"
                           " WHERE tenant = ? AND state = 'watching'", [reason, tenant])
        await self._thread.run(note)

    # -- watches, as the RPCs keep them ----------------------------------------------------

    async def start_watch(self, tenant: str, expires_at: datetime, now: datetime,
                          max_watched: int) -> Watch | None:
        def start(db: Database) -> Watch | None:
            with immediate(db):
                (others,) = db.execute(
                    "SELECT COUNT(*) FROM feed_watches WHERE state = 'watching'"
                    " AND tenant != ?", [tenant]).fetchone()
                if others >= max_watched:
                    return None
                db.execute(
                    "INSERT INTO feed_watches (tenant, state, reason, expires_at, started_at)"
                    " VALUES (?, 'watching', '', ?, ?) ON CONFLICT (tenant) DO UPDATE SET"
                    " expires_at = excluded.expires_at, ended_at = NULL,"
                    " started_at = CASE WHEN feed_watches.state = 'watching'"
                    "  THEN feed_watches.started_at ELSE excluded.started_at END,"
                    " reason = CASE WHEN feed_watches.state = 'watching'"
                    "  THEN feed_watches.reason ELSE '' END, state = 'watching'",
                    [tenant, iso(expires_at), iso(now)])
                return _watch(db, tenant)
        return await self._thread.run(start)

    async def stop_watch(self, tenant: str, reason: str, now: datetime) -> Watch | None:
        def stop(db: Database) -> Watch | None:
            with immediate(db):
                db.execute("UPDATE feed_watches SET state = 'ended', reason = ?, ended_at = ?"
                           " WHERE tenant = ? AND state = 'watching'",
                           [reason, iso(now), tenant])
                return _watch(db, tenant)
        return await self._thread.run(stop)

    async def get_watch(self, tenant: str) -> Watch | None:
        return await self._thread.run(lambda db: _watch(db, tenant))

    async def list_watches(self, after: str | None, limit: int) -> list[Watch]:
        def read(db: Database) -> list[Watch]:
            rows = select(db, WatchRow, f"SELECT {WATCH_COLUMNS} FROM feed_watches"
                          " WHERE tenant > ? ORDER BY tenant LIMIT ?", [after or "", limit])
            return [row.watch() for row in rows]
        return await self._thread.run(read)

    # -- changes -----------------------------------------------------------------------------

    async def changes_after(self, tenants: Sequence[str], cursor: int, limit: int,
                            unsettled_since: datetime) -> list[BookChange]:
        marks = ", ".join("?" * len(tenants))

        def read(db: Database) -> list[BookChange]:
            rows = select(
                db, ChangeRow,
                f"SELECT {CHANGE_COLUMNS}, {OURS} AS ours, {SETTLING} AS settling"
                f" FROM book_changes c"
                f" WHERE c.tenant IN ({marks}) AND c.seq > ? ORDER BY c.seq LIMIT ?",
                [iso(unsettled_since), *tenants, cursor, limit])
            return [row.change() for row in rows]
        return await self._thread.run(read) if tenants else []

    async def swept_through(self) -> int:
        def read(db: Database) -> int:
            row = db.execute("SELECT swept_through FROM book_change_sweeps WHERE id = 1"
                             ).fetchone()
            return int(row[0]) if row else 0
        return await self._thread.run(read)

    async def sweep(self, before: datetime) -> int:
        def sweep(db: Database) -> int:
            with immediate(db):
                (last,) = db.execute("SELECT MAX(seq) FROM book_changes WHERE recorded_at < ?",
                                     [iso(before)]).fetchone()
                if last is None:
                    return 0
                deleted = db.execute("DELETE FROM book_changes WHERE seq <= ?", [last]).rowcount
                db.execute("INSERT INTO book_change_sweeps (id, swept_through) VALUES (1, ?)"
                           " ON CONFLICT (id) DO UPDATE SET swept_through ="
                           " MAX(swept_through, excluded.swept_through)", [last])
                return int(deleted)
        return await self._thread.run(sweep)

    async def year_changes(self, tenant: str, since: datetime,
                           financial_year_ids: Sequence[int]) -> list[YearChanges]:
        marks = ", ".join("?" * len(financial_year_ids))

        def read(db: Database) -> list[YearChanges]:
            rows = select(
                db, YearRow,
                "SELECT c.financial_year_id, COUNT(DISTINCT c.voucher_series || ' '"
                " || c.voucher_number) AS changed_vouchers, COUNT(*) AS changes"
                " FROM book_changes c WHERE c.tenant = ? AND c.topic = 'vouchers'"
                f" AND c.recorded_at > ? AND c.financial_year_id IN ({marks})"
                f" AND NOT {OURS} GROUP BY c.financial_year_id",
                [tenant, iso(since), *financial_year_ids])
            return [row.year() for row in rows]
        return await self._thread.run(read) if financial_year_ids else []


def _watch(db: Database, tenant: str) -> Watch | None:
    row = select_one(db, WatchRow, f"SELECT {WATCH_COLUMNS} FROM feed_watches WHERE tenant = ?",
                     [tenant])
    return row.watch() if row else None
