"""The client-side limiter keeps a burst within Fortnox's sliding window; 429s are retried."""

from __future__ import annotations

import asyncio
import sys
import time

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.fortnox import FortnoxAdapter
from adapters.fortnox.arrival import answer_age_s
from adapters.fortnox.limiter import Claim, LocalWindow, SlidingWindowLimiter
from adapters.fortnox.pools import SplitPools
from adapters.sqlite.connections import SqliteTokenStore
from core.connections import Connection
from core.errors import StorageUnavailable
from sandbox.testing import SandboxHandle
from tests.adapters.fortnox.conftest import TENANT, answers, settings_for
from tests.harness.connect import REDIRECT_URI, connect_adapter, log_in
from tests.harness.sandbox import FAST_RETRY


async def test_burst_of_300_causes_no_429(
    sandbox: SandboxHandle, store: SqliteTokenStore, provider: TracerProvider
) -> None:
    sandbox.set_rate_limit(50, 1.0)
    settings = settings_for(sandbox, rate_limit_requests=50, rate_limit_window_s=1.0)
    async with FortnoxAdapter(settings, store, tracer_provider=provider,
                              retry=FAST_RETRY) as adapter:
        await connect_adapter(adapter, TENANT)
        results = await asyncio.gather(
            *(adapter.api.company_information(TENANT) for _ in range(300)))
    assert len(results) == 300
    assert answers(sandbox, 429) == 0
    assert answers(sandbox, 200) == 301  # the burst plus the connect's company lookup


async def test_connects_overlapping_calls_on_one_company_meet_no_429(
    sandbox: SandboxHandle, store: SqliteTokenStore, provider: TracerProvider
) -> None:
    """The company look-up of a connect counts in the company's window (its token names the
    company), so thirty connects of one company amid its other calls stay within the limit."""
    sandbox.set_rate_limit(10, 1.0)
    settings = settings_for(sandbox, rate_limit_requests=10, rate_limit_window_s=1.0)
    async with FortnoxAdapter(settings, store, tracer_provider=provider,
                              retry=FAST_RETRY) as adapter:
        await connect_adapter(adapter, TENANT)
        logins = []
        for n in range(30):
            started = await adapter.connections.begin_connect(f"tenant-{n}", REDIRECT_URI)
            logins.append((started.state, log_in(started.url)["code"]))
        results = await asyncio.gather(
            *(adapter.connections.complete_connect(state, code) for state, code in logins),
            *(adapter.api.financial_years(TENANT) for _ in range(30)))
    connections = [r for r in results if isinstance(r, Connection)]
    assert len(connections) == 30 and len({c.fortnox_tenant_id for c in connections}) == 1
    assert answers(sandbox, 429) == 0
    assert answers(sandbox, 200) == 61  # the first connect, 30 more, 30 other calls


async def test_a_429_from_another_app_is_retried(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, spans: InMemorySpanExporter
) -> None:
    await connect_adapter(adapter, TENANT)
    sandbox.add_fault("rate_limit", count=2)
    spans.clear()
    years = await adapter.api.financial_years(TENANT)
    assert years
    assert answers(sandbox, 429) == 2
    (span,) = [s for s in spans.get_finished_spans() if s.name == "GET /3/financialyears"]
    assert span.attributes is not None
    assert span.attributes["fortnox.retry_count"] == 2
    assert [e.name for e in span.events] == ["fortnox.retry", "fortnox.retry"]


async def test_tenants_have_separate_windows() -> None:
    limiter = SlidingWindowLimiter(2, 60.0)
    for tenant in ("a", "b"):
        for _ in range(2):
            await (await limiter.acquire(tenant)).done()
    third = asyncio.ensure_future(limiter.acquire("a"))
    await asyncio.sleep(0.05)
    assert not third.done()  # "a" has used its window; "b" did not slow it down earlier
    third.cancel()


async def test_a_slot_counts_until_its_answer_arrives() -> None:
    limiter = SlidingWindowLimiter(1, 0.05)
    slot = await limiter.acquire("a")
    waiting = asyncio.ensure_future(limiter.acquire("a"))
    await asyncio.sleep(0.15)  # three windows pass, but the first answer has not come
    assert not waiting.done()
    await slot.done()
    await asyncio.sleep(0.02)
    assert not waiting.done()  # the window starts at the answer, not at the send
    await (await asyncio.wait_for(waiting, 1.0)).done()


async def test_a_caller_that_gives_up_waiting_leaves_no_slot_counting() -> None:
    limiter = SlidingWindowLimiter(1, 0.2, stale_after_s=600.0)
    first = await limiter.acquire("a")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(limiter.acquire("a"), 0.05)  # its deadline passes
    await first.done()
    # The one who gave up holds nothing: the next caller waits one window, not until stale.
    await (await asyncio.wait_for(limiter.acquire("a"), 5.0)).done()
    await limiter.aclose()


class BrokenWindow(LocalWindow):
    """This process's window, whose storage fails while ``broken``."""

    broken = True

    async def claim(self, key: str, wanted: int, limit: int, window_s: float,
                    stale_after_s: float) -> Claim:
        if self.broken:
            raise StorageUnavailable("the database is down")
        return await super().claim(key, wanted, limit, window_s, stale_after_s)


async def test_a_window_that_fails_fails_its_waiting_callers_and_recovers() -> None:
    window = BrokenWindow()
    limiter = SlidingWindowLimiter(5, 1.0, window=window)
    results = await asyncio.gather(*(limiter.acquire("a") for _ in range(3)),
                                   return_exceptions=True)
    assert [type(r) for r in results] == [StorageUnavailable] * 3
    window.broken = False
    await (await asyncio.wait_for(limiter.acquire("a"), 5.0)).done()
    await limiter.aclose()


async def test_callers_still_waiting_when_the_limiter_closes_fail_plainly() -> None:
    limiter = SlidingWindowLimiter(1, 60.0)
    await limiter.acquire("a")
    waiting = asyncio.ensure_future(limiter.acquire("a"))
    await asyncio.sleep(0.05)
    await limiter.aclose()
    with pytest.raises(StorageUnavailable):
        await asyncio.wait_for(waiting, 5.0)


@pytest.mark.skipif(sys.platform != "linux", reason="the kernel's TCP_INFO is Linux's")
async def test_an_answer_is_dated_by_when_it_reached_this_host_not_when_it_was_read(
    sandbox: SandboxHandle,
) -> None:
    """A slot's answer is aged by the kernel's account of when its data came: an answer read
    half a second late (a busy event loop) is half a second old, and never older than its
    request."""
    async with httpx.AsyncClient(transport=SplitPools(4, 2.0)) as http:
        sent_at = time.monotonic()
        async with http.stream("GET", f"{sandbox.base_url}/_sandbox/stats") as response:
            await asyncio.sleep(0.5)  # the answer's head is here; the loop is elsewhere
            age_s = answer_age_s(response, sent_at)
            assert 0.4 <= age_s <= time.monotonic() - sent_at
