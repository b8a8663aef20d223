"""The change feed in PostgreSQL: the holder lease judged by ``clock_timestamp()``, the
offsets and book changes written together, and the watched tenants.

A holder's write first updates the lease row for its generation, so it holds that row's lock
until it commits: a take-over waits for it (and its generation is then refused), and writes
commit one at a time in the order of their cursors, so a reader following the cursor never
skips a change committed late.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adapters.postgres.database import Conn, PostgresDatabase, select, select_one, sql
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
from core.clock import Clock, utc_now
from core.feed.model import BookChange, FeedEvent, Watch, WatchTarget, YearChanges
from core.feed.ports import HolderLost, Holding

_LEASE = "clock_timestamp() + make_interval(secs => %(lease)s)"
SETTLING_PG = sql(SETTLING)


class PostgresFeedStore:
    """``HolderStore``, ``WatchStore`` and ``ChangeStore`` on the shared pool."""

    def __init__(self, db: PostgresDatabase, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    # -- the holder lease ------------------------------------------------------------------

    async def take_holder(self, owner: str, lease_s: float) -> Holding | None:
        args = {"name": HOLDER, "owner": owner, "lease": lease_s}
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO feed_holder (name, owner, generation, expires_at)"
                " VALUES (%(name)s, '', 0, '-infinity') ON CONFLICT (name) DO NOTHING", args)
            cursor = await conn.execute(
                "SELECT owner, generation, expires_at > clock_timestamp() AS live"
                " FROM feed_holder WHERE name = %(name)s FOR UPDATE", args)
            row = await cursor.fetchone()
            assert row is not None
            if row["live"] and row["owner"] != owner:
                return None
            generation = int(row["generation"]) + 1
            await conn.execute(
                f"UPDATE feed_holder SET owner = %(owner)s, generation = %(generation)s,"
                f" expires_at = {_LEASE} WHERE name = %(name)s",
                {**args, "generation": generation})
            return Holding(owner, generation,
                           took_over=row["owner"] not in ("", owner))

    async def renew_holder(self, holding: Holding, lease_s: float) -> bool:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                f"UPDATE feed_holder SET expires_at = {_LEASE} WHERE name = %(name)s"
                " AND owner = %(owner)s AND generation = %(generation)s",
                {"name": HOLDER, "owner": holding.owner, "generation": holding.generation,
                 "lease": lease_s})
            return cursor.rowcount == 1

    async def release_holder(self, holding: Holding) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE feed_holder SET expires_at = '-infinity' WHERE name = %s"
                " AND owner = %s AND generation = %s",
                (HOLDER, holding.owner, holding.generation))

    async def offsets(self) -> dict[str, str]:
        async with self._db.connection() as conn:
            cursor = await conn.execute("SELECT topic, last_offset FROM feed_offsets")
            return {row["topic"]: row["last_offset"] for row in await cursor.fetchall()}

    async def record(self, holding: Holding, events: Sequence[FeedEvent]) -> int:
        now = self._clock()
        async with self._db.transaction() as conn:
            proof = await conn.execute(
                "UPDATE feed_holder SET owner = owner WHERE name = %s AND owner = %s"
                " AND generation = %s", (HOLDER, holding.owner, holding.generation))
            if proof.rowcount != 1:
                raise HolderLost()
            cursor = await conn.execute(
                "INSERT INTO book_changes (tenant, topic, event_offset, event_type, kind,"
                " entity_id, fortnox_tenant_id, financial_year_id, voucher_series,"
                " voucher_number, occurred_at, recorded_at)"
                " SELECT w.tenant, e.topic, e.event_offset, e.event_type, e.kind, e.entity_id,"
                " e.company, e.year, e.series, e.number, e.occurred_at, %(now)s"
                " FROM unnest(%(topic)s::text[], %(offset)s::text[], %(type)s::text[],"
                "  %(kind)s::text[], %(entity)s::text[], %(company)s::bigint[],"
                "  %(year)s::bigint[], %(series)s::text[], %(number)s::bigint[],"
                "  %(occurred)s::timestamptz[]) WITH ORDINALITY AS e(topic, event_offset,"
                "  event_type, kind, entity_id, company, year, series, number, occurred_at, n)"
                " JOIN feed_watches w ON w.feed_tenant_id = e.company AND w.state = 'watching'"
                " ORDER BY e.n, w.tenant ON CONFLICT DO NOTHING",
                {"now": now,
                 "topic": [e.topic for e in events], "offset": [e.offset for e in events],
                 "type": [e.event_type for e in events], "kind": [kind_of(e) for e in events],
                 "entity": [e.entity_id for e in events],
                 "company": [e.fortnox_tenant_id for e in events],
                 "year": [e.financial_year_id for e in events],
                 "series": [e.voucher_series for e in events],
                 "number": [e.voucher_number for e in events],
                 "occurred": [e.occurred_at for e in events]})
            added = cursor.rowcount
            offsets = last_offsets(list(events))
            await conn.execute(
                "INSERT INTO feed_offsets (topic, last_offset, generation, updated_at)"
                " SELECT t, o, %s, %s FROM unnest(%s::text[], %s::text[]) AS u(t, o)"
                " ON CONFLICT (topic) DO UPDATE SET last_offset = excluded.last_offset,"
                " generation = excluded.generation, updated_at = excluded.updated_at",
                (holding.generation, now, list(offsets), list(offsets.values())))
            return max(added, 0)

    # -- watches, as the holder keeps them -------------------------------------------------

    async def watch_targets(self, now: datetime) -> list[WatchTarget]:
        async with self._db.connection() as conn:
            rows = await select(
                conn, TargetRow,
                "SELECT w.tenant, w.feed_tenant_id, w.token_expires_at,"
                " COALESCE(c.state, 'REVOKED') AS connection_state,"
                " COALESCE(c.state_reason, '') AS connection_reason"
                " FROM feed_watches w LEFT JOIN connections c ON c.tenant = w.tenant"
                " WHERE w.state = 'watching' AND w.expires_at > %s ORDER BY w.tenant", [now])
        return [row.target() for row in rows]

    async def end_expired_watches(self, now: datetime) -> list[str]:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "UPDATE feed_watches SET state = 'ended', ended_at = %s,"
                " reason = 'The watch expired.'"
                " WHERE state = 'watching' AND expires_at <= %s RETURNING tenant", (now, now))
            return [row["tenant"] for row in await cursor.fetchall()]

    async def watch_added(self, tenant: str, feed_tenant_id: int,
                          token_expires_at: datetime | None, now: datetime) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE feed_watches SET feed_tenant_id = %s, token_expires_at = %s,"
                " added_at = %s, reason = '' WHERE tenant = %s AND state = 'watching'",
                (feed_tenant_id, token_expires_at, now, tenant))

    async def end_watch(self, tenant: str, reason: str, now: datetime) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE feed_watches SET state = 'ended', reason = %s, ended_at = %s"
                " WHERE tenant = %s AND state = 'watching'", (reason, now, tenant))

    async def note_watch(self, tenant: str, reason: str) -> None:
        async with self._db.connection() as conn:
            await conn.execute("UPDATE feed_watches SET reason = %s"
                               " WHERE tenant = %s AND state = 'watching'", (reason, tenant))

    # -- watches, as the RPCs keep them ----------------------------------------------------

    async def start_watch(self, tenant: str, expires_at: datetime, now: datetime,
                          max_watched: int) -> Watch | None:
        async with self._db.transaction() as conn:
            # One start at a time counts and inserts, so the bound holds across replicas.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WATCH_LOCK,))
            cursor = await conn.execute(
                "SELECT COUNT(*) AS n FROM feed_watches WHERE state = 'watching'"
                " AND tenant != %s", (tenant,))
            row = await cursor.fetchone()
            if row is not None and row["n"] >= max_watched:
                return None
            await conn.execute(
                "INSERT INTO feed_watches AS w (tenant, state, reason, expires_at, started_at)"
                " VALUES (%s, 'watching', '', %s, %s) ON CONFLICT (tenant) DO UPDATE SET"
                " expires_at = excluded.expires_at, ended_at = NULL,"
                " started_at = CASE WHEN w.state = 'watching' THEN w.started_at"
                "  ELSE excluded.started_at END,"
                " reason = CASE WHEN w.state = 'watching' THEN w.reason ELSE '' END,"
                " state = 'watching'", (tenant, expires_at, now))
            return await _watch(conn, tenant)

    async def stop_watch(self, tenant: str, reason: str, now: datetime) -> Watch | None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE feed_watches SET state = 'ended', reason = %s, ended_at = %s"
                " WHERE tenant = %s AND state = 'watching'", (reason, now, tenant))
            return await _watch(conn, tenant)

    async def get_watch(self, tenant: str) -> Watch | None:
        async with self._db.connection() as conn:
            return await _watch(conn, tenant)

    async def list_watches(self, after: str | None, limit: int) -> list[Watch]:
        async with self._db.connection() as conn:
            rows = await select(conn, WatchRow, f"SELECT {WATCH_COLUMNS} FROM feed_watches"
                                " WHERE tenant > %s ORDER BY tenant LIMIT %s",
                                [after or "", limit])
        return [row.watch() for row in rows]

    # -- changes -----------------------------------------------------------------------------

    async def changes_after(self, tenants: Sequence[str], cursor: int, limit: int,
                            unsettled_since: datetime) -> list[BookChange]:
        if not tenants:
            return []
        async with self._db.connection() as conn:
            rows = await select(
                conn, ChangeRow,
                f"SELECT {CHANGE_COLUMNS}, {OURS} AS ours, {SETTLING_PG} AS settling"
                " FROM book_changes c"
                " WHERE c.tenant = ANY(%s) AND c.seq > %s ORDER BY c.seq LIMIT %s",
                [unsettled_since, list(tenants), cursor, limit])
        return [row.change() for row in rows]

    async def swept_through(self) -> int:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "SELECT swept_through FROM book_change_sweeps WHERE id = 1")
            row = await cursor.fetchone()
            return int(row["swept_through"]) if row else 0

    async def sweep(self, before: datetime) -> int:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "SELECT MAX(seq) AS last FROM book_changes WHERE recorded_at < %s", (before,))
            row = await cursor.fetchone()
            if row is None or row["last"] is None:
                return 0
            deleted = await conn.execute("DELETE FROM book_changes WHERE seq <= %s",
                                         (row["last"],))
            await conn.execute(
                "INSERT INTO book_change_sweeps (id, swept_through) VALUES (1, %s)"
                " ON CONFLICT (id) DO UPDATE SET swept_through ="
                " GREATEST(book_change_sweeps.swept_through, excluded.swept_through)",
                (row["last"],))
            return max(deleted.rowcount, 0)

    async def year_changes(self, tenant: str, since: datetime,
                           financial_year_ids: Sequence[int]) -> list[YearChanges]:
        if not financial_year_ids:
            return []
        async with self._db.connection() as conn:
            rows = await select(
                conn, YearRow,
                "SELECT c.financial_year_id, COUNT(DISTINCT (c.voucher_series,"
                " c.voucher_number)) AS changed_vouchers, COUNT(*) AS changes"
                " FROM book_changes c WHERE c.tenant = %s AND c.topic = 'vouchers'"
                " AND c.recorded_at > %s AND c.financial_year_id = ANY(%s)"
                f" AND NOT {OURS} GROUP BY c.financial_year_id",
                [tenant, since, list(financial_year_ids)])
        return [row.year() for row in rows]


#: The advisory lock that makes counting and starting watches one step (any constant no other
#: lock of ours uses).
_WATCH_LOCK = 0x5761_7463  # "Watc"


async def _watch(conn: Conn, tenant: str) -> Watch | None:
    row = await select_one(conn, WatchRow,
                           f"SELECT {WATCH_COLUMNS} FROM feed_watches WHERE tenant = %s",
                           [tenant])
    return row.watch() if row else None
