"""The adapter behind an HTTP proxy named in the environment: calls go through the proxy
(not straight to the connection pools, which know nothing of it), and no cookie an answer
sets travels with a later call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from opentelemetry.sdk.trace import TracerProvider

from adapters.fortnox import FortnoxAdapter
from adapters.sqlite.connections import SqliteTokenStore
from sandbox.testing import SandboxHandle
from tests.adapters.fortnox.conftest import TOKEN_KEY, settings_for
from tests.harness.connect import connect_adapter
from tests.harness.sandbox import FAST_RETRY

#: What the proxy adds to every answer, as a load balancer in front of Fortnox might.
COOKIE = "lb=replica-7"


@dataclass
class ForwardProxy:
    """A plain HTTP forward proxy: one request a connection, in absolute form, forwarded to
    its host with ``Connection: close``; it notes each request and sets a cookie on each
    answer."""

    requests: list[tuple[str, str, list[str]]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *headers = head.split("\r\n")[:-2]
            method, target, version = request_line.split(" ")
            url = urlsplit(target)
            named = {name.strip().lower(): value.strip()
                     for name, _, value in (h.partition(":") for h in headers)}
            self.requests.append((method, url.path, [v for n, v in named.items()
                                                     if n == "cookie"]))
            body = await reader.readexactly(int(named.get("content-length", "0")))
            kept = [h for h in headers if h.partition(":")[0].strip().lower()
                    not in ("connection", "proxy-connection", "keep-alive")]
            assert url.hostname is not None
            up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port)
            path = url.path + (f"?{url.query}" if url.query else "")
            up_writer.write("\r\n".join([f"{method} {path} {version}", *kept,
                                         "Connection: close", "", ""]).encode("latin-1") + body)
            answer_head = (await up_reader.readuntil(b"\r\n\r\n"))[:-2]
            writer.write(answer_head + f"Set-Cookie: {COOKIE}; Path=/\r\n\r\n".encode())
            while data := await up_reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
            up_writer.close()
        finally:
            writer.close()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForwardProxy]:
    """The proxy on an event loop of its own (the harness's browser login is synchronous),
    named by the environment."""
    forward = ForwardProxy()
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(forward.handle, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
    try:
        yield forward
    finally:
        server.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def test_calls_go_through_the_proxy_without_cookies(
    proxy: ForwardProxy, sandbox: SandboxHandle, tmp_path: Path
) -> None:
    store = SqliteTokenStore(tmp_path / "bridge.sqlite3", TOKEN_KEY)
    try:
        async with FortnoxAdapter(settings_for(sandbox), store, tracer_provider=TracerProvider(),
                                  retry=FAST_RETRY) as adapter:
            await connect_adapter(adapter, "first", sandbox.tenants[0].id)
            await connect_adapter(adapter, "second", sandbox.tenants[1].id)
            years = await adapter.api.financial_years("first")
            assert [y.from_date.isoformat() for y in years] == [
                y["from"] for y in sandbox.tenants[0].financial_years]
            await adapter.api.financial_years("second")
            sie = await adapter.api.open_sie_export("second", years[-1].id)
            async with sie:
                assert (b"".join([chunk async for chunk in sie])).startswith(b"#FLAGGA")
    finally:
        await store.aclose()
    api = [(method, path) for method, path, _ in proxy.requests if path.startswith("/3/")]
    assert api.count(("GET", "/3/financialyears")) == 2, proxy.requests
    assert ("GET", "/3/sie/4") in api
    assert any(path.endswith("/token") for _, path, _ in proxy.requests)  # OAuth too
    assert [cookies for _, _, cookies in proxy.requests if cookies] == []
