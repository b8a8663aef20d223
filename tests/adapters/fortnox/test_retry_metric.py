"""Every retry is counted, whatever was retried: an API call, a download resumed mid-body and a
token request go through the one retry loop (``retry.Retries``) and its metric."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.fortnox import FortnoxAdapter
from adapters.fortnox.oauth import OAuthClient
from adapters.fortnox.retry import RetryPolicy
from core.clock import utc_now
from sandbox.testing import SandboxHandle
from tests.adapters.fortnox.conftest import TENANT
from tests.harness.connect import connect_adapter
from tests.harness.metrics import points, recording_metrics, total

RETRIES = "fortnox_bridge.fortnox.retries"


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    with recording_metrics() as (_, reader):
        yield reader


async def test_a_retried_api_call_is_counted(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, reader: InMemoryMetricReader
) -> None:
    await connect_adapter(adapter, TENANT)
    sandbox.add_fault("error", status=503, count=1, path="/3/financialyears")
    assert await adapter.api.financial_years(TENANT)
    assert total(points(reader), RETRIES, {"url.template": "/3/financialyears",
                                           "http.request.method": "GET",
                                           "error.type": "503"}) == 1


async def test_a_download_resumed_after_a_dropped_connection_is_counted(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, reader: InMemoryMetricReader,
    spans: InMemorySpanExporter,
) -> None:
    await connect_adapter(adapter, TENANT)
    year_id = (await adapter.api.financial_years(TENANT))[-1].id
    assert total(points(reader), RETRIES) == 0
    sandbox.add_fault("slow_sie", count=1, path="/3/sie", chunk_bytes=256, chunk_delay_ms=0)
    sandbox.add_fault("drop", count=1, path="/3/sie")
    spans.clear()
    async with await adapter.api.open_sie_export(TENANT, year_id) as stream:
        assert b"".join([chunk async for chunk in stream]).startswith(b"#FLAGGA")
    assert sandbox.faults() == []  # the drop happened
    found = points(reader)
    assert total(found, RETRIES, {"url.template": "/3/sie/{type}",
                                  "http.request.method": "GET"}) == 1
    assert total(found, RETRIES) == 1
    (span,) = [s for s in spans.get_finished_spans() if s.name == "GET /3/sie/{type}"]
    assert [e.name for e in span.events] == ["fortnox.retry"]


async def test_a_token_request_retried_after_it_never_left_is_counted(
    sandbox: SandboxHandle, reader: InMemoryMetricReader, spans: InMemorySpanExporter,
    provider: TracerProvider,
) -> None:
    """No sandbox fault can make a token request certainly unsent (a fault acts on a request
    the sandbox has received), so the refusal is a real one: the token endpoint's port is
    bound but not listening, then, once the retry is counted, it listens and forwards to the
    sandbox. The request is repeated (it never left), answered, and counted once."""
    target = urlsplit(sandbox.auth_url)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    port = closed.getsockname()[1]
    retry = RetryPolicy(max_attempts=3, base_delay_s=1.0, max_delay_s=1.0)
    async with httpx.AsyncClient() as http:
        client = OAuthClient(
            http, auth_base_url=f"http://127.0.0.1:{port}{target.path}",
            client_id=sandbox.client_id, client_secret=sandbox.client_secret,
            tracer=provider.get_tracer("test"), retry=retry, timeout_s=10, clock=utc_now,
            refresh_token_lifetime=timedelta(days=45))
        refresh_token = sandbox.tokens()["refresh_token"]
        asking = asyncio.ensure_future(client.refresh(refresh_token, None))
        while not total(points(reader), RETRIES):  # the first try was refused and counted
            assert not asking.done(), asking.exception()
            await asyncio.sleep(0.01)
        # The retry waits at least 0.5 s; the forwarder listens long before it asks again.
        forwarder = await asyncio.start_server(
            lambda r, w: _forward(r, w, target.hostname or "", target.port or 80), sock=closed)
        async with forwarder:
            grant = await asking
    assert grant.access_token and grant.refresh_token
    found = points(reader)
    assert total(found, RETRIES, {"url.template": "/oauth-v1/token",
                                  "http.request.method": "POST",
                                  "error.type": "ConnectError"}) == 1
    assert total(found, RETRIES) == 1
    (span,) = [s for s in spans.get_finished_spans() if s.name == "POST /oauth-v1/token"]
    assert span.attributes is not None and span.attributes["fortnox.retry_count"] == 1


async def _forward(client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter,
                   host: str, port: int) -> None:
    """Relays one connection to the sandbox, both ways, until either side closes."""
    server_in, server_out = await asyncio.open_connection(host, port)
    await asyncio.gather(_pipe(client_in, server_out), _pipe(server_in, client_out),
                         return_exceptions=True)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    finally:
        sink.close()
