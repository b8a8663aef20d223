"""The rate-limit window on every backend, and shared by two limiters as two replicas share it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from adapters.fortnox import FortnoxAdapter
from adapters.fortnox.limiter import (
    Answered,
    Claim,
    LocalWindow,
    RateWindow,
    SlidingWindowLimiter,
)
from adapters.postgres import open_postgres
from adapters.postgres.rate_window import PostgresRateWindow
from adapters.sqlite.connections import SqliteTokenStore
from adapters.sqlite.rate_window import SqliteRateWindow
from core.errors import StorageUnavailable
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
    (first,) = (await window.claim("c", 1, 2, 0.5, 60)).slot_ids
    (_second,) = (await window.claim("c", 1, 2, 0.5, 60)).slot_ids
    full = await window.claim("c", 1, 2, 0.5, 60)
    assert full.slot_ids == () and full.wait_s == pytest.approx(0.5)  # both still in flight
    await window.finish([Answered("c", first, time.monotonic())])
    assert len((await window.claim("other", 1, 2, 0.5, 60)).slot_ids) == 1  # per company
    answered = await window.claim("c", 1, 2, 0.5, 60)
    assert answered.slot_ids == () and 0.3 < answered.wait_s <= 0.5
    await asyncio.sleep(answered.wait_s + 0.01)
    assert len((await window.claim("c", 1, 2, 0.5, 60)).slot_ids) == 1


async def test_one_claim_takes_what_fits_and_says_when_the_rest_may(
    windows: WindowFactory,
) -> None:
    window = await windows()
    first = await window.claim("c", 3, 5, 0.5, 60)
    assert len(set(first.slot_ids)) == 3 and first.wait_s == 0
    second = await window.claim("c", 4, 5, 0.5, 60)  # two fit, two wait
    assert len(second.slot_ids) == 2 and not set(second.slot_ids) & set(first.slot_ids)
    assert second.wait_s == pytest.approx(0.5)  # none answered yet: a whole window
    assert (await window.claim("c", 1, 5, 0.5, 60)).slot_ids == ()
    await window.finish([Answered("c", slot_id, time.monotonic()) for slot_id in first.slot_ids])
    third = await window.claim("c", 2, 5, 0.5, 60)
    assert third.slot_ids == () and 0.3 < third.wait_s <= 0.5
    await asyncio.sleep(third.wait_s + 0.01)  # the three answered slots leave the window
    assert len((await window.claim("c", 5, 5, 0.5, 60)).slot_ids) == 3


async def test_an_answer_is_dated_when_it_came_not_when_the_window_is_told(
    windows: WindowFactory,
) -> None:
    """A batch of answers reaches the window late: each is dated by its age, so its slot
    leaves the window a window after the answer, not after the write."""
    window = await windows()
    (slot,) = (await window.claim("c", 1, 1, 2.0, 60)).slot_ids
    await window.finish([Answered("c", slot, time.monotonic() - 1.5)])  # 1.5 s before told
    full = await window.claim("c", 1, 1, 2.0, 60)
    assert full.slot_ids == () and 0.0 < full.wait_s <= 0.5 + 0.05


async def test_a_slot_never_answered_stops_counting_when_stale(windows: WindowFactory) -> None:
    window = await windows()
    assert len((await window.claim("c", 1, 1, 0.1, 0.3)).slot_ids) == 1  # its process dies
    assert (await window.claim("c", 1, 1, 0.1, 0.3)).slot_ids == ()
    await asyncio.sleep(0.35)
    assert len((await window.claim("c", 1, 1, 0.1, 0.3)).slot_ids) == 1


async def test_two_limiters_on_one_window_admit_the_limit_together(
    windows: WindowFactory,
) -> None:
    limiters = [SlidingWindowLimiter(5, 60.0, window=await windows()) for _ in range(2)]
    admitted = [asyncio.ensure_future(limiters[i % 2].acquire("c")) for i in range(8)]
    await asyncio.sleep(0.5)
    assert sum(task.done() for task in admitted) == 5
    for task in admitted:
        task.cancel()


async def test_claims_and_datings_of_many_companies_at_once_each_get_their_own_answer(
    windows: WindowFactory,
) -> None:
    """Asked at the same moment on two connections (the SQLite window takes what is asked
    meanwhile together in one trip to its thread): each company's slots stay within its
    limit on both together, every slot is its own, and each dating dates its own slots."""
    replicas = [await windows(), await windows()]
    keys = [f"company-{n}" for n in range(20)]
    claims = await asyncio.gather(*(replicas[i % 2].claim(key, 3, 4, 0.5, 60)
                                    for i, key in enumerate(keys * 2)))
    for key in keys:
        mine = [claim for claim, asked in zip(claims, keys * 2, strict=True) if asked == key]
        assert sum(len(claim.slot_ids) for claim in mine) == 4
        assert [claim.wait_s for claim in mine if len(claim.slot_ids) < 3] == [0.5]
    slot_ids = [slot for claim in claims for slot in claim.slot_ids]
    assert len(set(slot_ids)) == len(slot_ids) == 80
    # The first 10 companies' slots answered a whole window ago, at once on both: those
    # companies have room again, the others none.
    answered_at = time.monotonic() - 0.6
    await asyncio.gather(*(
        replicas[i % 2].finish([Answered(key, slot, answered_at) for slot in claim.slot_ids])
        for i, (claim, key) in enumerate(zip(claims, keys * 2, strict=True))
        if key in keys[:10]))
    again = await asyncio.gather(*(replicas[i % 2].claim(key, 1, 4, 0.5, 60)
                                   for i, key in enumerate(keys)))
    assert [len(claim.slot_ids) for claim in again] == [1] * 10 + [0] * 10


async def test_a_closed_sqlite_window_fails_its_claims_as_storage_unavailable(
    tmp_path: Path,
) -> None:
    window = SqliteRateWindow(tmp_path / "shared.sqlite3")
    assert len((await window.claim("c", 1, 2, 0.5, 60)).slot_ids) == 1
    await window.aclose()
    outcomes = await asyncio.gather(*(window.claim(f"c{n}", 1, 2, 0.5, 60) for n in range(3)),
                                    return_exceptions=True)
    assert all(isinstance(outcome, StorageUnavailable) for outcome in outcomes)


async def test_a_sqlite_claim_and_dating_cost_a_few_statements_however_many_slots(
    tmp_path: Path,
) -> None:
    """Each statement is a wait for the interpreter lock while a burst keeps the event loop
    busy (up to its switch interval, 5 ms): 25 slots are taken, and 25 answers dated, by a
    handful of statements each, not one per slot."""
    window = SqliteRateWindow(tmp_path / "shared.sqlite3")
    statements: list[str] = []
    # The window's own connection (it has no other): what SQLite is asked to run on it.
    window._thread._db.conn.set_trace_callback(statements.append)
    claim = await window.claim("c", 25, 25, 60.0, 120.0)
    assert len(set(claim.slot_ids)) == 25 and claim.wait_s == 0
    claimed = len(statements)
    answered_at = time.monotonic() - 30.0
    await window.finish([Answered("c", slot, answered_at) for slot in claim.slot_ids])
    dated = len(statements) - claimed
    window._thread._db.conn.set_trace_callback(None)
    assert claimed <= 6 and dated <= 3, statements
    # They did what a statement per slot did: the 25 are taken, and dated 30 s ago ...
    full = await window.claim("c", 1, 25, 60.0, 120.0)
    assert full.slot_ids == () and 29.0 < full.wait_s <= 30.05
    # ... every one of them: an undated slot would be stale at once here, and leave.
    await asyncio.sleep(0.01)
    assert (await window.claim("c", 25, 25, 60.0, 0.001)).slot_ids == ()
    await window.aclose()


class CountingWindow:
    """A window that counts the transactions the limiter asks of it."""

    def __init__(self, window: RateWindow) -> None:
        self.window = window
        self.claims = 0
        self.datings = 0

    async def claim(self, key: str, wanted: int, limit: int, window_s: float,
                    stale_after_s: float) -> Claim:
        self.claims += 1
        return await self.window.claim(key, wanted, limit, window_s, stale_after_s)

    async def finish(self, answered: Sequence[Answered]) -> None:
        self.datings += 1
        await self.window.finish(answered)


async def test_a_burst_costs_the_window_a_claim_not_one_per_call(
    windows: WindowFactory,
) -> None:
    """Twenty-five callers of one company waiting at once take their slots in one claim, and
    their answers are dated together; the twenty-sixth waits for the window."""
    counted = CountingWindow(await windows())
    limiter = SlidingWindowLimiter(25, 60.0, window=counted)
    slots = await asyncio.wait_for(asyncio.gather(*(limiter.acquire("c") for _ in range(25))),
                                   30)
    assert len({slot._slot_id for slot in slots}) == 25
    assert counted.claims <= 2
    extra = asyncio.ensure_future(limiter.acquire("c"))
    await asyncio.sleep(0.3)
    assert not extra.done()
    extra.cancel()
    for slot in slots:
        await slot.done()
    await limiter.aclose()
    assert 1 <= counted.datings <= 2
    after = await counted.window.claim("c", 1, 25, 60.0, 120.0)
    assert after.slot_ids == () and after.wait_s < 60.0  # the answers were dated


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
