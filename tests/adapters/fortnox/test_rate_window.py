"""The rate-limit window on every backend, and shared by two limiters as two replicas share it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from adapters.fortnox import FortnoxAdapter
from adapters.fortnox.limiter import LocalWindow, RateWindow, SlidingWindowLimiter
from adapters.postgres import open_postgres
from adapters.postgres.rate_window import PostgresRateWindow
from adapters.sqlite.connections import SqliteTokenStore
from adapters.sqlite.rate_window import SqliteRateWindow
from sandbox.testing import SandboxHandle
from tests.adapters.fortnox.conftest import TENANT, answers, settings_for
from tests.harness.connect import REDIRECT_URI, connect_adapter, log_in
from tests.harness.postgres import PostgresServer
from tests.harness.sandbox import FAST_RETRY

#: Opens one more window on the same shared state (a replica's own connection to it).
WindowFactory = Callable[[], Awaitable[RateWindow]]


@pytest.fixture(params=["local", "sqlite", "postgres"])
async def windows(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[WindowFactory]:
    """A factory of windows over one shared state, each on a connection of its own (the
    local window: the one instance, as every caller in a process shares it)."""
    closers: list[Callable[[], Awaitable[None]]] = []
    if request.param == "local":
        local = LocalWindow()

        async def make() -> RateWindow:
            return local
    elif request.param == "sqlite":
        async def make() -> RateWindow:
            window = SqliteRateWindow(tmp_path / "shared.sqlite3")
            closers.append(window.aclose)
            return window
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database()

        async def make() -> RateWindow:
            db = await open_postgres(url, max_size=4)
            closers.append(db.close)
            return PostgresRateWindow(db)
    yield make
    for close in closers:
        await close()


async def test_a_full_window_says_how_long_until_a_slot_frees(windows: WindowFactory) -> None:
    window = await windows()
    first = await window.claim("c", 2, 0.5, 60)
    second = await window.claim("c", 2, 0.5, 60)
    assert first.slot_id is not None and second.slot_id is not None
    full = await window.claim("c", 2, 0.5, 60)
    assert full.slot_id is None and full.wait_s == pytest.approx(0.5)  # both still in flight
    await window.finish("c", first.slot_id)
    assert (await window.claim("other", 2, 0.5, 60)).slot_id is not None  # per company
    answered = await window.claim("c", 2, 0.5, 60)
    assert answered.slot_id is None and 0.3 < answered.wait_s <= 0.5
    await asyncio.sleep(answered.wait_s + 0.01)
    assert (await window.claim("c", 2, 0.5, 60)).slot_id is not None


async def test_a_slot_never_answered_stops_counting_when_stale(windows: WindowFactory) -> None:
    window = await windows()
    assert (await window.claim("c", 1, 0.1, 0.3)).slot_id is not None  # its process dies
    assert (await window.claim("c", 1, 0.1, 0.3)).slot_id is None
    await asyncio.sleep(0.35)
    assert (await window.claim("c", 1, 0.1, 0.3)).slot_id is not None


async def test_two_limiters_on_one_window_admit_the_limit_together(
    windows: WindowFactory,
) -> None:
    limiters = [SlidingWindowLimiter(5, 60.0, window=await windows()) for _ in range(2)]
    admitted = [asyncio.ensure_future(limiters[i % 2].acquire("c")) for i in range(8)]
    await asyncio.sleep(0.5)
    assert sum(task.done() for task in admitted) == 5
    for task in admitted:
        task.cancel()


async def _burst(
    sandbox: SandboxHandle, store: SqliteTokenStore, provider: TracerProvider,
    windows: list[RateWindow],
) -> list[object]:
    """Two adapters (two replicas) calling one company at once, each with its own window."""
    settings = settings_for(sandbox, rate_limit_requests=8, rate_limit_window_s=1.0)
    adapters = [FortnoxAdapter(settings, store, tracer_provider=provider, retry=FAST_RETRY,
                               rate_window=window) for window in windows]
    try:
        await connect_adapter(adapters[0], TENANT)
        sandbox.set_rate_limit(8, 1.0)
        await asyncio.sleep(1.0)  # the connect's own lookup leaves the window (see transport)
        return await asyncio.gather(*(adapters[i % 2].api.company_information(TENANT)
                                      for i in range(40)), return_exceptions=True)
    finally:
        for adapter in adapters:
            await adapter.aclose()


async def test_two_replicas_sharing_the_window_cause_no_429(
    windows: WindowFactory, sandbox: SandboxHandle, store: SqliteTokenStore,
    provider: TracerProvider,
) -> None:
    results = await _burst(sandbox, store, provider, [await windows(), await windows()])
    assert not [r for r in results if isinstance(r, BaseException)]
    assert answers(sandbox, 429) == 0
    assert answers(sandbox, 200) == 41  # the burst plus the connect's company lookup


async def test_two_replicas_each_with_its_own_window_meet_429s(
    sandbox: SandboxHandle, store: SqliteTokenStore, provider: TracerProvider,
) -> None:
    """The control: without a shared window the same burst goes over the limit."""
    await _burst(sandbox, store, provider, [LocalWindow(), LocalWindow()])
    assert answers(sandbox, 429) > 0


async def test_two_tenants_linked_to_one_fortnox_company_share_its_window(
    sandbox: SandboxHandle, store: SqliteTokenStore, provider: TracerProvider,
) -> None:
    """Fortnox limits each company, not each of our tenants linked to it."""
    settings = settings_for(sandbox, rate_limit_requests=8, rate_limit_window_s=1.0)
    async with FortnoxAdapter(settings, store, tracer_provider=provider,
                              retry=FAST_RETRY) as adapter:
        for tenant in ("a", "b"):
            await connect_adapter(adapter, tenant)  # both log in to the first company
        sandbox.set_rate_limit(8, 1.0)
        await asyncio.sleep(1.0)
        results = await asyncio.gather(
            *(adapter.api.company_information("ab"[i % 2]) for i in range(32)),
            return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)]
    assert answers(sandbox, 429) == 0


async def test_connects_on_two_replicas_amid_the_companys_calls_cause_no_429(
    windows: WindowFactory, sandbox: SandboxHandle, store: SqliteTokenStore,
    provider: TracerProvider,
) -> None:
    """A connect's company look-up waits in the company's shared window like any call: thirty
    connects to one company over two replicas, amid that company's other calls, meet no
    429."""
    settings = settings_for(sandbox, rate_limit_requests=8, rate_limit_window_s=1.0)
    adapters = [FortnoxAdapter(settings, store, tracer_provider=provider, retry=FAST_RETRY,
                               rate_window=await windows()) for _ in range(2)]
    try:
        await connect_adapter(adapters[0], TENANT)
        sandbox.set_rate_limit(8, 1.0)
        logins = []
        for n in range(30):
            started = await adapters[n % 2].connections.begin_connect(f"t{n}", REDIRECT_URI)
            logins.append((n % 2, started.state, log_in(started.url)["code"]))
        results = await asyncio.gather(
            *(adapters[i].connections.complete_connect(state, code)
              for i, state, code in logins),
            *(adapters[i % 2].api.financial_years(TENANT) for i in range(30)),
            return_exceptions=True)
    finally:
        for adapter in adapters:
            await adapter.aclose()
    assert not [r for r in results if isinstance(r, BaseException)]
    assert answers(sandbox, 429) == 0
