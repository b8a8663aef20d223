"""The whole service in-process against the sandbox: real gRPC, real HTTP, real SQLite. And the
service with Fortnox out of reach (``servicer``, overridden by the interceptor tests) for the
server's own tests, and the environment of a ``serve`` process (``serve_env``)."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sandbox.testing import SandboxHandle, running_sandbox
from server.app import RunningServer, start_server
from server.config import Address, Settings, load_settings
from server.telemetry import build_tracer_provider
from server.wiring import open_service
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.service import RATE_LIMIT, RATE_WINDOW_S, service_env, serving_in_process


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox(rate_limit=RATE_LIMIT, rate_window_seconds=RATE_WINDOW_S) as sb:
        yield sb


@pytest.fixture
def settings(sandbox: SandboxHandle, tmp_path: Path) -> Settings:
    return load_settings(service_env(sandbox.base_url, tmp_path / "bridge.sqlite3"))


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def service(settings: Settings, spans: InMemorySpanExporter) -> AsyncIterator[RunningServer]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    async with serving_in_process(settings, provider) as running:
        yield running


@pytest.fixture
async def stub(service: RunningServer) -> AsyncIterator[pb_grpc.FortnoxServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        yield pb_grpc.FortnoxServiceStub(channel)


@pytest.fixture
def provider(spans: InMemorySpanExporter) -> TracerProvider:
    return build_tracer_provider(
        otlp_endpoint="", console=False, extra_processors=(SimpleSpanProcessor(spans),)
    )


@pytest.fixture
def serve_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a development start of ``fortnox-bridge serve`` on a free port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORTNOX_", "OTEL_"))}
    env.update(
        FORTNOX_BRIDGE_ENV="development",
        FORTNOX_BRIDGE_LISTEN="127.0.0.1:0",
        FORTNOX_BRIDGE_DB_PATH=str(tmp_path / "state" / "bridge.sqlite3"),
        FORTNOX_CLIENT_ID="test-client",
        FORTNOX_CLIENT_SECRET="test-secret",
        FORTNOX_TOKEN_KEY=base64.b64encode(bytes(range(32))).decode(),
    )
    return env


@pytest.fixture
async def servicer(
    serve_env: dict[str, str], provider: TracerProvider
) -> AsyncIterator[pb_grpc.FortnoxServiceServicer]:
    """The service on real parts, Fortnox out of reach (nothing here may call it); tests of
    the interceptor override it with a failing one."""
    unreachable = "http://127.0.0.1:9"
    settings = load_settings(
        serve_env | {"FORTNOX_API_BASE_URL": unreachable, "FORTNOX_AUTH_BASE_URL": unreachable})
    async with open_service(settings, provider) as servicer:
        yield servicer


@pytest.fixture
async def running(
    servicer: pb_grpc.FortnoxServiceServicer, provider: TracerProvider
) -> AsyncIterator[RunningServer]:
    server = await start_server(Address("127.0.0.1", 0), servicer, provider)
    yield server
    await server.server.stop(None)


@pytest.fixture
async def channel(running: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as chan:
        yield chan
