"""Background jobs on several replicas: each period's run is done once, and faults are retried."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psycopg
import pytest

from adapters.postgres import open_postgres
from adapters.postgres.job_leases import PostgresJobLeases
from adapters.sqlite.job_leases import SqliteJobLeases
from core.jobs import Job, JobLeases, JobRunner
from tests.harness.postgres import PostgresServer

#: Opens the shared leases once more, on a connection of its own (one replica's).
LeasesFactory = Callable[[], Awaitable[JobLeases]]


@pytest.fixture(params=["sqlite", "postgres"])
async def leases(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LeasesFactory]:
    closers: list[Callable[[], Awaitable[None]]] = []
    if request.param == "sqlite":
        async def make() -> JobLeases:
            store = SqliteJobLeases(tmp_path / "shared.sqlite3")
            closers.append(store.aclose)
            return store
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database()

        async def make() -> JobLeases:
            db = await open_postgres(url, max_size=2)
            closers.append(db.close)
            return PostgresJobLeases(db)
    yield make
    for close in closers:
        await close()


async def test_two_runners_do_each_period_once(leases: LeasesFactory) -> None:
    runs: list[tuple[str, float]] = []

    def job(owner: str) -> Job:
        async def sweep() -> None:
            runs.append((owner, time.monotonic()))
        return Job("sweep", 0.25, sweep)

    runners = [JobRunner(await leases(), owner, [job(owner)]) for owner in ("a", "b")]
    tasks = [asyncio.create_task(runner.run()) for runner in runners]
    await asyncio.sleep(2.0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    gaps = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(runs)]
    assert 5 <= len(runs) <= 9
    assert min(gaps) > 0.2  # never both replicas in one period


async def test_a_dead_replicas_lease_is_taken_when_it_ends(leases: LeasesFactory) -> None:
    first, second = await leases(), await leases()
    assert await first.take("purge", "a", 0.3)  # replica a takes it, then dies
    assert not await second.take("purge", "b", 0.3)
    await asyncio.sleep(0.35)
    assert await second.take("purge", "b", 0.3)
    assert not await first.take("purge", "a", 0.3)


async def test_a_failed_run_is_logged_and_the_next_period_runs(
    leases: LeasesFactory, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes = iter([RuntimeError("first run fails"), None])
    ran = asyncio.Event()

    async def flaky() -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome
        ran.set()

    runner = JobRunner(await leases(), "a", [Job("flaky", 0.1, flaky)])
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(ran.wait(), 2.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    (record,) = [r for r in caplog.records if r.name == "core.jobs"]
    assert record.levelno == logging.WARNING
    assert record.__dict__["job"] == "flaky" and record.__dict__["error"] == "RuntimeError"


async def test_a_lost_database_connection_is_logged_and_retried(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = await open_postgres(postgres_url, min_size=1, max_size=1)
    runs = 0

    async def count() -> None:
        nonlocal runs
        runs += 1

    job = Job("count", 0.0, count)
    runner = JobRunner(PostgresJobLeases(db), "a", [job])
    try:
        assert await runner.run_once(job)
        with psycopg.connect(postgres_url, autocommit=True) as admin:  # the server drops us
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        outcomes = [await runner.run_once(job) for _ in range(3)]
    finally:
        await db.close()
    assert outcomes[0] is False and outcomes[-1] is True  # the pool reconnects
    assert runs == 1 + outcomes.count(True)
    errors = {r.__dict__["error"] for r in caplog.records if r.name == "core.jobs"}
    assert errors == {"StorageUnavailable"}


async def test_replicas_starting_at_once_migrate_once(postgres_url: str) -> None:
    databases = await asyncio.gather(*(open_postgres(postgres_url) for _ in range(5)))
    for db in databases:
        await db.close()
    with psycopg.connect(postgres_url) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM schema_migrations")]
    assert sorted(names) == sorted(set(names)) and len(names) >= 3
