"""The rate-limit window in PostgreSQL: every replica talking to a company shares its slots."""

from __future__ import annotations

from adapters.fortnox.limiter import Claim, wait_for_free_slot
from adapters.postgres.database import PostgresDatabase


class PostgresRateWindow:
    """``adapters.fortnox.limiter.RateWindow`` over ``rate_limit_slots``, claimed under a
    per-company advisory lock by the ``claim_rate_slot`` function (one round trip)."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def claim(self, key: str, limit: int, window_s: float, stale_after_s: float) -> Claim:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "SELECT slot_id, now_s, oldest_done_s FROM claim_rate_slot(%s, %s, %s, %s)",
                (key, limit, window_s, stale_after_s),
            )
            row = await cursor.fetchone()
        assert row is not None  # a function with OUT parameters returns one row
        if row["slot_id"] is not None:
            return Claim(int(row["slot_id"]))
        return Claim(None, wait_for_free_slot(row["now_s"], row["oldest_done_s"], window_s))

    async def finish(self, key: str, slot_id: int) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE rate_limit_slots SET done_at = clock_timestamp() WHERE slot_id = %s",
                (slot_id,),
            )
