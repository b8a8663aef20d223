"""Fixtures for the Fortnox adapter: a sandbox over real HTTP, a real SQLite store, spans."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.fortnox import FortnoxAdapter
from adapters.sqlite.connections import SqliteTokenStore
from sandbox.testing import SandboxHandle, running_sandbox
from server.config import Settings
from tests.harness.sandbox import FAST_RETRY, fresh
from tests.harness.service import sandbox_settings

TOKEN_KEY = bytes(range(32))
TENANT = "sb-company-1"


class MovableClock:
    """The adapter's wall clock, moved forward by tests instead of sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxHandle]:
    with running_sandbox(vouchers_per_year=600, invoices_per_year=20,
                         supplier_invoices_per_year=15) as sb:
        yield sb


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    return fresh(sandbox_server)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(spans: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteTokenStore]:
    store = SqliteTokenStore(tmp_path / "bridge.sqlite3", TOKEN_KEY)
    yield store
    await store.aclose()


def settings_for(sb: SandboxHandle, **overrides: Any) -> Settings:
    """The service's settings for the sandbox with its demo client: a rate limit no test
    reaches, attempts of 5 s; ``overrides`` replace settings by name."""
    return sandbox_settings(sb.base_url, **{
        "rate_limit_requests": 10_000, "rate_limit_window_s": 1.0, "http_timeout_s": 5.0,
        **overrides})


@pytest.fixture
async def adapter(
    sandbox: SandboxHandle, store: SqliteTokenStore, provider: TracerProvider,
    clock: MovableClock,
) -> AsyncIterator[FortnoxAdapter]:
    async with FortnoxAdapter(settings_for(sandbox), store, tracer_provider=provider,
                              clock=clock, retry=FAST_RETRY) as adapter:
        yield adapter


def token_stats(sb: SandboxHandle) -> dict[str, int]:
    """The sandbox's token events summed over tenants."""
    totals: dict[str, int] = {}
    for events in sb.stats()["tokens"].values():
        for name, count in events.items():
            totals[name] = totals.get(name, 0) + count
    return totals


def answers(sb: SandboxHandle, status: int) -> int:
    """API answers with ``status`` the sandbox gave, over all tenants."""
    return sum(int(by_status.get(str(status), 0))
               for by_status in sb.stats()["requests"].values())
