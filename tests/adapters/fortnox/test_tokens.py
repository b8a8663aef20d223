"""Refresh: rotation, single flight (in one process and across processes), invalid_grant."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

from adapters.clock_skew import ClockSkewWatch, DatabaseClock
from adapters.fortnox import FortnoxAdapter
from adapters.fortnox.tokens import LOST_ANSWER_REASON, TokenManager
from adapters.sqlite.clock import SqliteClock
from adapters.sqlite.connections import SqliteTokenStore
from core.connections import AccountType, ConnectionState
from core.errors import ReconnectRequired
from core.token_store import CurrentTokens, TokenStore
from sandbox.testing import SandboxHandle
from tests.adapters.fortnox.conftest import (
    TENANT,
    TOKEN_KEY,
    MovableClock,
    settings_for,
    token_stats,
)
from tests.harness.connect import connect_adapter
from tests.harness.disk import Disk, next_write_grows_the_wal, small_disk_fixture  # noqa: F401
from tests.harness.sandbox import FAST_RETRY

WORKER = Path(__file__).with_name("refresh_worker.py")


async def test_expiring_token_is_rotated_and_the_old_refresh_token_dies(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, store: SqliteTokenStore,
    clock: MovableClock,
) -> None:
    await connect_adapter(adapter, TENANT)
    first = await store.current_tokens(TENANT)
    clock.advance(minutes=56)  # inside the 5-minute margin before the 1-hour expiry
    await adapter.api.company_information(TENANT)
    second = await store.current_tokens(TENANT)
    assert second.generation == first.generation + 1
    assert second.refresh_token != first.refresh_token
    clock.advance(minutes=56)
    await adapter.api.company_information(TENANT)
    assert (await store.current_tokens(TENANT)).generation == first.generation + 2
    assert token_stats(sandbox)["refreshes"] == 2

    async with httpx.AsyncClient() as http:
        spent = await http.post(
            f"{sandbox.auth_url}/token", auth=(sandbox.client_id, sandbox.client_secret),
            data={"grant_type": "refresh_token", "refresh_token": first.refresh_token})
    assert spent.json()["error"] == "invalid_grant"
    connection = await adapter.connections.get_connection(TENANT)
    assert connection.last_refreshed_at is not None
    assert connection.last_refreshed_at > connection.connected_at  # type: ignore[operator]


async def test_fifty_concurrent_calls_refresh_once(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, clock: MovableClock
) -> None:
    await connect_adapter(adapter, TENANT)
    clock.advance(minutes=59)
    results = await asyncio.gather(*(adapter.api.company_information(TENANT)
                                     for _ in range(50)))
    assert len(results) == 50
    stats = token_stats(sandbox)
    assert stats["refreshes"] == 1
    assert stats.get("refresh_rejected", 0) == 0


async def test_refreshed_on_use_once_the_tokens_are_older_than_the_maximum_age(
    sandbox: SandboxHandle, store: SqliteTokenStore, clock: MovableClock,
    provider: TracerProvider,
) -> None:
    """The daily rule (here with a 30-minute maximum age so the access token stays valid)."""
    async with FortnoxAdapter(settings_for(sandbox), store, tracer_provider=provider, clock=clock,
                              max_token_age=timedelta(minutes=30)) as adapter:
        await connect_adapter(adapter, TENANT)
        clock.advance(minutes=20)
        await adapter.api.company_information(TENANT)
        assert token_stats(sandbox).get("refreshes", 0) == 0
        clock.advance(minutes=15)  # 25 minutes of access left: only the age makes it due
        await adapter.api.company_information(TENANT)
        assert token_stats(sandbox)["refreshes"] == 1
        assert (await store.current_tokens(TENANT)).generation == 2


async def test_invalid_grant_requires_reconnect_and_is_not_retried(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, clock: MovableClock
) -> None:
    connection = await connect_adapter(adapter, TENANT)
    sandbox.invalidate_refresh_tokens(int(connection.fortnox_tenant_id))
    clock.advance(hours=2)
    with pytest.raises(ReconnectRequired) as first:
        await adapter.api.company_information(TENANT)
    assert first.value.metadata["oauth_error"] == "invalid_grant"
    with pytest.raises(ReconnectRequired):
        await adapter.api.company_information(TENANT)
    assert token_stats(sandbox)["refresh_rejected"] == 1
    after = await adapter.connections.get_connection(TENANT)
    assert after.state is ConnectionState.RECONNECT_REQUIRED
    assert "invalid_grant" in after.reason
    again = await connect_adapter(adapter, TENANT)
    assert again.state is ConnectionState.CONNECTED


async def test_a_lost_refresh_answer_is_settled_at_once_and_named(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, clock: MovableClock
) -> None:
    await connect_adapter(adapter, TENANT)
    sandbox.add_fault("commit_drop", path="/oauth-v1/token", count=1)
    clock.advance(hours=2)
    with pytest.raises(ReconnectRequired) as caught:
        await adapter.api.company_information(TENANT)
    assert caught.value.metadata["state_reason"] == LOST_ANSWER_REASON
    stats = token_stats(sandbox)
    assert (stats["refreshes"], stats["refresh_rejected"]) == (1, 1)  # spent, then asked again
    after = await adapter.connections.get_connection(TENANT)
    assert after.state is ConnectionState.RECONNECT_REQUIRED
    assert after.reason == LOST_ANSWER_REASON


async def test_a_refresh_whose_answer_comes_on_the_second_asking_goes_on(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, store: SqliteTokenStore, clock: MovableClock
) -> None:
    await connect_adapter(adapter, TENANT)
    generation = (await store.current_tokens(TENANT)).generation
    # Fortnox never saw the first request: the connection broke before it was handled.
    sandbox.add_fault("drop", path="/oauth-v1/token", count=1)
    clock.advance(hours=2)
    info = await adapter.api.company_information(TENANT)
    assert info.company_name
    assert sandbox.faults() == []  # the first asking was dropped
    assert (await store.current_tokens(TENANT)).generation == generation + 1
    assert token_stats(sandbox)["refreshes"] == 1


async def test_token_rejected_by_fortnox_is_refreshed_and_the_call_repeated(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, store: SqliteTokenStore
) -> None:
    await connect_adapter(adapter, TENANT)
    generation = (await store.current_tokens(TENANT)).generation
    sandbox.advance_clock(2 * 3600)  # Fortnox's clock: our token expired without our knowing
    info = await adapter.api.company_information(TENANT)
    assert info.company_name
    assert (await store.current_tokens(TENANT)).generation == generation + 1
    assert token_stats(sandbox)["refreshes"] == 1


class SkewedClock(MovableClock):
    """A replica's wall clock: the test's clock, off by ``skew_s`` seconds."""

    def __init__(self, base: MovableClock, skew_s: float) -> None:
        super().__init__()
        self._base, self._skew = base, timedelta(seconds=skew_s)

    def __call__(self) -> datetime:
        return self._base() + self._skew


@pytest.mark.parametrize("account_type", [AccountType.USER, AccountType.SERVICE])
@pytest.mark.parametrize("skews", [(0, 120), (-120, 0)], ids=["second-fast", "first-slow"])
async def test_replicas_whose_clocks_are_off_by_two_minutes_ask_fortnox_once(
    sandbox: SandboxHandle, store: TokenStore, clock: MovableClock, provider: TracerProvider,
    skews: tuple[int, int], account_type: AccountType,
) -> None:
    """The first replica's grant request is slow; the second, whose clock is two minutes
    ahead of the first's, finds the token due meanwhile. The claim's lease is the
    database's, so the second waits for the first's tokens: one refresh-token spend (one
    client-credentials grant), nobody told RECONNECT_REQUIRED."""
    first_clock, second_clock = (SkewedClock(clock, skew) for skew in skews)
    async with (
        FortnoxAdapter(settings_for(sandbox), store, tracer_provider=provider,
                       clock=first_clock) as first,
        FortnoxAdapter(settings_for(sandbox), store, tracer_provider=provider,
                       clock=second_clock) as second,
    ):
        await connect_adapter(first, TENANT, account_type=account_type)
        generation = (await store.current_tokens(TENANT)).generation
        sandbox.add_fault("latency", path="/oauth-v1/token", latency_ms=1500, count=1)
        clock.advance(minutes=59)
        slow = asyncio.create_task(first.api.company_information(TENANT))
        await _until(lambda: token_stats(sandbox).get(GRANTS[account_type], 0) == 0
                     and not sandbox.faults(), "the first grant request to leave")
        await asyncio.sleep(0.3)
        results = await asyncio.gather(slow, second.api.company_information(TENANT))
    assert all(info.company_name for info in results)
    stats = token_stats(sandbox)
    assert stats[GRANTS[account_type]] == 1
    assert stats.get("refresh_rejected", 0) == stats.get("client_credentials_rejected", 0) == 0
    assert (await store.current_tokens(TENANT)).generation == generation + 1


async def test_a_worker_whose_claim_was_taken_over_sends_nothing_and_reads_the_winners(
    sandbox: SandboxHandle, store: TokenStore, clock: MovableClock, provider: TracerProvider,
) -> None:
    """A worker's first asking hangs past its lease and is dropped unseen; meanwhile another
    takes the claim over and spends the refresh token. Before asking again the first proves
    its claim, finds it gone, sends nothing, and uses the winner's tokens."""
    async with (
        FortnoxAdapter(settings_for(sandbox, http_timeout_s=1.0), store,
                       tracer_provider=provider, clock=clock) as adapter,  # a 6 s lease
        FortnoxAdapter(settings_for(sandbox, http_timeout_s=30.0), store,
                       tracer_provider=provider, clock=clock) as patient,
    ):
        await connect_adapter(adapter, TENANT)
        generation = (await store.current_tokens(TENANT)).generation
        hung = TokenManager(store, patient.oauth, clock=clock, refresh_margin=timedelta(0),
                            max_token_age=timedelta(days=1), claim_lease=timedelta(seconds=0.3))
        sandbox.add_fault("latency", path="/oauth-v1/token", latency_ms=7500, count=1)
        sandbox.add_fault("drop", path="/oauth-v1/token", count=1)
        clock.advance(hours=2)
        loser = asyncio.create_task(hung.access(TENANT, None))
        await _until(lambda: not sandbox.faults(), "the first asking to reach Fortnox")
        info = await adapter.api.company_information(TENANT)  # takes the lapsed claim over
        assert info.company_name
        tokens = await loser
    winner = await store.current_tokens(TENANT)
    assert winner.generation == tokens.generation == generation + 1
    assert tokens.access_token == winner.access_token
    stats = token_stats(sandbox)
    assert (stats["refreshes"], stats.get("refresh_rejected", 0)) == (1, 0)


async def test_a_replica_whose_clock_is_fast_judges_a_token_due_by_the_databases_time(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, store: TokenStore,
    provider: TracerProvider, tmp_path: Path,
) -> None:
    """A replica 58 minutes fast would find a fresh token inside its 5-minute margin and
    spend the refresh token for nothing; reckoning the database's time it uses the token."""
    await connect_adapter(adapter, TENANT)
    fast = DatabaseClock(lambda: datetime.now(UTC) + timedelta(minutes=58))
    database = SqliteClock(tmp_path / "bridge.sqlite3")
    try:
        await ClockSkewWatch(database, warn_after_s=5.0, database_clock=fast).check()
    finally:
        await database.aclose()
    async with FortnoxAdapter(settings_for(sandbox), store, tracer_provider=provider,
                              clock=fast) as replica:
        assert (await replica.api.company_information(TENANT)).company_name
    assert token_stats(sandbox).get("refreshes", 0) == 0
    assert (await store.current_tokens(TENANT)).generation == 1


#: The sandbox's count of the grants a renewal of each kind of connection asks for.
GRANTS = {AccountType.USER: "refreshes", AccountType.SERVICE: "client_credentials"}


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Waits until ``condition`` holds (polling), failing after a generous time."""
    give_up = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_two_processes_sharing_the_database_refresh_once(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    refresh_in_two_processes(sandbox, str(tmp_path / "shared.sqlite3"))


def refresh_in_two_processes(sandbox: SandboxHandle, db: str) -> None:
    """Two worker processes on the database ``db`` (a file or a URL) find the token due at
    once: Fortnox sees one refresh."""
    bootstrap = subprocess.run(
        [sys.executable, str(WORKER), "connect", db, sandbox.base_url],
        capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(bootstrap.stdout)["generation"] == 1
    start_at = time.time() + 2.0
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "call", db, sandbox.base_url, str(start_at)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=60) for w in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    results = [json.loads(out) for out, _ in outputs]
    assert all(r["calls"] == 20 for r in results)
    assert {r["generation"] for r in results} == {2}
    stats = token_stats(sandbox)
    assert stats["refreshes"] == 1
    assert stats.get("refresh_rejected", 0) == 0


async def test_a_rotated_pair_is_kept_through_a_full_disk(
    sandbox: SandboxHandle, small_disk: Disk, clock: MovableClock, provider: TracerProvider
) -> None:
    # Fortnox spends the old refresh token when it answers: the new pair must reach the
    # database even when the disk is full at that moment, or the customer must log in again.
    store = SqliteTokenStore(small_disk.path / "bridge.sqlite3", TOKEN_KEY)
    try:
        async with FortnoxAdapter(settings_for(sandbox), store, tracer_provider=provider,
                                  clock=clock) as adapter:
            await connect_adapter(adapter, TENANT)
            sandbox.add_fault("latency", path="/oauth-v1/token", latency_ms=1000)
            clock.advance(hours=2)
            call = asyncio.create_task(adapter.api.company_information(TENANT))
            await asyncio.sleep(0.5)  # the refresh is claimed and on its way
            with next_write_grows_the_wal(small_disk.path / "bridge.sqlite3"):
                small_disk.fill()
                await asyncio.sleep(2.0)  # answered after 1 s; storing the pair fails since
            assert token_stats(sandbox)["refreshes"] == 1
            assert not call.done()
            small_disk.free()
            assert (await call).company_name
        assert (await store.current_tokens(TENANT)).generation == 2
        stats = token_stats(sandbox)
        assert (stats["refreshes"], stats.get("refresh_rejected", 0)) == (1, 0)
    finally:
        await store.aclose()


class _CountedReads(SqliteTokenStore):
    """The real store, counting how often a tenant's tokens are read from it."""

    reads = 0

    async def current_tokens(self, tenant: str) -> CurrentTokens:
        self.reads += 1
        return await super().current_tokens(tenant)


async def test_a_burst_reads_the_stored_tokens_once_and_a_forgotten_reading_is_not_kept(
    sandbox: SandboxHandle, tmp_path: Path, provider: TracerProvider, clock: MovableClock
) -> None:
    """Calls that find no tokens in memory share one read of the store (a burst of 50 is
    not 50 transactions); a reading under way when the tokens are forgotten is not cached."""
    store = _CountedReads(tmp_path / "bridge.sqlite3", TOKEN_KEY)
    try:
        async with FortnoxAdapter(settings_for(sandbox), store, tracer_provider=provider,
                                  clock=clock, retry=FAST_RETRY) as adapter:
            await connect_adapter(adapter, TENANT)
            adapter.tokens.forget(TENANT)
            store.reads = 0
            results = await asyncio.gather(*(adapter.api.company_information(TENANT)
                                             for _ in range(50)))
            assert len(results) == 50 and store.reads == 1

            adapter.tokens.forget(TENANT)
            reading = asyncio.create_task(adapter.tokens.access(TENANT, None))
            await asyncio.sleep(0)  # the reading has started
            adapter.tokens.forget(TENANT)
            await reading
            await adapter.api.company_information(TENANT)
            assert store.reads == 3  # the forgotten reading's tokens were not kept
    finally:
        await store.aclose()
