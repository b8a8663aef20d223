"""The client-side limiter keeps a burst within Fortnox's sliding window; 429s are retried."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.fortnox import FortnoxAdapter
from adapters.fortnox.limiter import SlidingWindowLimiter
from adapters.store.connections import SqliteTokenStore
from sandbox.testing import SandboxHandle
from tests.adapters.fortnox.conftest import TENANT, answers, settings_for
from tests.harness.connect import connect_adapter
from tests.harness.sandbox import FAST_RETRY


async def test_burst_of_300_causes_no_429(
    sandbox: SandboxHandle, store: SqliteTokenStore, provider: TracerProvider
) -> None:
    sandbox.set_rate_limit(50, 1.0)
    settings = settings_for(sandbox, rate_limit_requests=50, rate_limit_window_s=1.0)
    async with FortnoxAdapter(settings, store, tracer_provider=provider,
                              retry=FAST_RETRY) as adapter:
        await connect_adapter(adapter, TENANT)
        # The connect's lookup is limited under the tenant (the company is not known yet);
        # the burst's calls under the company: let the lookup leave the window first.
        await asyncio.sleep(1.0)
        results = await asyncio.gather(
            *(adapter.api.company_information(TENANT) for _ in range(300)))
    assert len(results) == 300
    assert answers(sandbox, 429) == 0
    assert answers(sandbox, 200) == 301  # the burst plus the connect's company lookup


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
