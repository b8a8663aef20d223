"""Job leases in PostgreSQL: one replica runs each background job per period."""

from __future__ import annotations

from adapters.postgres.database import PostgresDatabase


class PostgresJobLeases:
    """``core.jobs.JobLeases`` over ``job_leases``: an upsert that succeeds only where the lease
    has expired, dated by the database's clock (the row lock orders replicas racing for it)."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def take(self, job: str, owner: str, period_s: float) -> bool:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO job_leases AS l (job, owner, expires_at, last_run_at)"
                " VALUES (%(job)s, %(owner)s,"
                "  clock_timestamp() + make_interval(secs => %(period)s), clock_timestamp())"
                " ON CONFLICT (job) DO UPDATE SET owner = excluded.owner,"
                "  expires_at = excluded.expires_at, last_run_at = excluded.last_run_at"
                " WHERE l.expires_at <= clock_timestamp()"
                " RETURNING owner",
                {"job": job, "owner": owner, "period": period_s},
            )
            return await cursor.fetchone() is not None
