"""A replica's clock against the database's, on each backend: the offset is measured, exported
as ``fortnox_bridge.clock.offset`` and warned about beyond the threshold."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.clock_skew import ClockSkewWatch, DatabaseClock, DatabaseTime
from adapters.postgres import open_postgres
from adapters.postgres.clock import PostgresClock
from adapters.sqlite.clock import SqliteClock
from core.clock import utc_now
from tests.harness.metrics import points, recording_metrics, total
from tests.harness.postgres import PostgresServer

#: The measurement's error at most (a round trip on a loaded machine), in seconds.
SLACK_S = 10.0


@pytest.fixture(params=["sqlite", "postgres"])
async def database_time(request: pytest.FixtureRequest, tmp_path: Path
                        ) -> AsyncIterator[DatabaseTime]:
    closers: list[Callable[[], Awaitable[None]]] = []
    if request.param == "sqlite":
        clock = SqliteClock(tmp_path / "shared.sqlite3")
        closers.append(clock.aclose)
        yield clock
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        db = await open_postgres(server.create_database(), max_size=2)
        closers.append(db.close)
        yield PostgresClock(db)
    for close in closers:
        await close()


@pytest.mark.parametrize("skew_s", [-120, 120])
async def test_a_replica_whose_clock_is_off_says_so_in_a_metric_and_the_log(
    database_time: DatabaseTime, caplog: pytest.LogCaptureFixture, skew_s: int
) -> None:
    replica = DatabaseClock(lambda: utc_now() + timedelta(seconds=skew_s))
    watch = ClockSkewWatch(database_time, warn_after_s=5.0, database_clock=replica)
    with recording_metrics() as (_, reader), caplog.at_level(logging.WARNING):
        offset = await watch.check()
        found = points(reader)
    assert abs(offset - skew_s) < SLACK_S
    assert abs((replica() - utc_now()).total_seconds()) < SLACK_S  # reckons the database's
    assert abs(total(found, "fortnox_bridge.clock.offset") - skew_s) < SLACK_S
    (warning,) = [r for r in caplog.records if r.name == "adapters.clock_skew"]
    assert abs(warning.__dict__["clock_offset_s"] - skew_s) < SLACK_S
    assert warning.__dict__["threshold_s"] == 5.0


async def test_a_replica_on_time_measures_about_nothing_and_stays_quiet(
    database_time: DatabaseTime, caplog: pytest.LogCaptureFixture
) -> None:
    watch = ClockSkewWatch(database_time, warn_after_s=SLACK_S)
    with recording_metrics() as (_, reader), caplog.at_level(logging.WARNING):
        offset = await watch.check()
        found = points(reader)
    assert abs(offset) < SLACK_S
    assert [p.unit for p in found if p.metric == "fortnox_bridge.clock.offset"] == ["s"]
    assert not [r for r in caplog.records if r.name == "adapters.clock_skew"]
