"""The rate-limit window in PostgreSQL: every replica talking to a company shares its slots."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.fortnox.limiter import Answered, Claim, wait_for_free_slot
from adapters.postgres.database import PostgresDatabase


class PostgresRateWindow:
    """``adapters.fortnox.limiter.RateWindow`` over ``rate_limit_slots``, claimed under a
    per-company advisory lock by the ``claim_rate_slots`` function: one round trip however
    many slots it takes, and one statement for a batch of answers. The database's clock
    dates every slot."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def claim(
        self, key: str, wanted: int, limit: int, window_s: float, stale_after_s: float
    ) -> Claim:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "SELECT slot_ids, now_s, oldest_done_s"
                " FROM claim_rate_slots(%s, %s, %s, %s, %s)",
                (key, wanted, limit, window_s, stale_after_s),
            )
            row = await cursor.fetchone()
        assert row is not None  # a function with OUT parameters returns one row
        taken = tuple(int(slot_id) for slot_id in row["slot_ids"])
        if len(taken) == wanted:
            return Claim(taken)
        return Claim(taken, wait_for_free_slot(row["now_s"], row["oldest_done_s"], window_s))

    async def finish(self, answered: Sequence[Answered]) -> None:
        """Dates each slot by the database's clock less how long ago its answer came, taken
        once the connection is ours (so a slot is never dated earlier than its answer,
        whatever the replica's clock, nor later for waiting for a connection)."""
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE rate_limit_slots AS s"
                " SET done_at = clock_timestamp() - make_interval(secs => a.age_s)"
                " FROM unnest(%s::bigint[], %s::float8[]) AS a(slot_id, age_s)"
                " WHERE s.slot_id = a.slot_id",
                ([one.slot_id for one in answered], [one.age_s() for one in answered]),
            )
