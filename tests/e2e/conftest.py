"""The whole service in-process against the sandbox: real gRPC, real HTTP, real SQLite."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sandbox.testing import SandboxHandle, running_sandbox
from server.app import RunningServer, start_server
from server.config import Settings, load_settings
from server.wiring import build_servicer
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc

#: Small windows keep the tests short; the limiter and the sandbox agree on them.
RATE_LIMIT, RATE_WINDOW_S = 25, 0.5


def service_env(sb: SandboxHandle, db_path: Path) -> dict[str, str]:
    """The environment of a service wired to the sandbox ``sb``."""
    return {
        "FORTNOX_BRIDGE_ENV": "development",
        "FORTNOX_BRIDGE_LISTEN": "127.0.0.1:0",
        "FORTNOX_BRIDGE_DB_PATH": str(db_path),
        "FORTNOX_CLIENT_ID": sb.client_id,
        "FORTNOX_CLIENT_SECRET": sb.client_secret,
        "FORTNOX_API_BASE_URL": sb.api_url,
        "FORTNOX_AUTH_BASE_URL": sb.auth_url,
        "FORTNOX_REDIRECT_URIS": " ".join(sb.redirect_uris),
        "FORTNOX_TOKEN_KEY": base64.b64encode(bytes(range(32))).decode(),
        "FORTNOX_RATE_LIMIT_REQUESTS": str(RATE_LIMIT),
        "FORTNOX_RATE_LIMIT_WINDOW_S": str(RATE_WINDOW_S),
        "FORTNOX_BRIDGE_SHUTDOWN_GRACE_S": "1",
    }


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox(rate_limit=RATE_LIMIT, rate_window_seconds=RATE_WINDOW_S) as sb:
        yield sb


@pytest.fixture
def settings(sandbox: SandboxHandle, tmp_path: Path) -> Settings:
    return load_settings(service_env(sandbox, tmp_path / "bridge.sqlite3"))


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def service(settings: Settings, spans: InMemorySpanExporter) -> AsyncIterator[RunningServer]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    async with build_servicer(settings, provider) as servicer:
        running = await start_server(settings.listen, servicer, provider)
        yield running
        await running.server.stop(None)


@pytest.fixture
async def stub(service: RunningServer) -> AsyncIterator[pb_grpc.FortnoxServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        yield pb_grpc.FortnoxServiceStub(channel)


@dataclass
class Consent:
    """What Fortnox sent back to the redirect URI after the customer logged in."""

    code: str
    state: str


def log_in(authorization_url: str, tenant_id: int | None = None) -> Consent:
    """Plays the customer's browser: opens the login URL and reads the redirect."""
    url = httpx.URL(authorization_url)
    if tenant_id is not None:  # the sandbox's stand-in for picking a company at login
        url = url.copy_add_param("tenant", str(tenant_id))
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return Consent(code=query["code"][0], state=query["state"][0])


async def connect(
    stub: pb_grpc.FortnoxServiceStub,
    sb: SandboxHandle,
    tenant: str,
    fortnox_tenant: int | None = None,
    scopes: tuple[str, ...] = (),
) -> pb.CompleteConnectResponse:
    """Connect + login + CompleteConnect, as Skatt & Bokslut and the customer do."""
    started = await stub.Connect(pb.ConnectRequest(
        tenant=tenant, redirect_uri=sb.redirect_uri, scopes=list(scopes)
    ))
    consent = log_in(started.authorization_url, fortnox_tenant)
    assert consent.state == started.state
    response: pb.CompleteConnectResponse = await stub.CompleteConnect(
        pb.CompleteConnectRequest(state=consent.state, code=consent.code)
    )
    return response
