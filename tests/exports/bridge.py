"""An in-process bridge for the ledger and export tests: the service as the composition root
builds it, against a running sandbox, on a real SQLite file, a real gRPC server and channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from opentelemetry.sdk.trace import TracerProvider

from adapters.fortnox import FortnoxAdapter
from adapters.fortnox.retry import RetryPolicy
from adapters.sie_parsing import ProcessParsers
from sandbox.testing import ALL_SCOPES, SandboxHandle
from server.app import start_server
from server.config import Address, Settings, load_settings
from server.wiring import build_servicer, fortnox_adapter, open_backend
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.e2e.stack import service_env

TENANT = "sb-company"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05)


@dataclass
class Bridge:
    """A served bridge: the stub, the adapter (for connecting) and the SQLite file."""

    stub: pb_grpc.FortnoxServiceStub
    adapter: FortnoxAdapter
    db_path: Path


def bridge_settings(sb: SandboxHandle, db_path: Path, rate_limit: int = 10_000,
                    window_s: float = 1.0) -> Settings:
    """The service's settings pointing at the sandbox with its demo client and every scope."""
    return load_settings(service_env(sb, db_path) | {
        "FORTNOX_DEFAULT_SCOPES": " ".join(ALL_SCOPES),
        "FORTNOX_RATE_LIMIT_REQUESTS": str(rate_limit),
        "FORTNOX_RATE_LIMIT_WINDOW_S": str(window_s),
        "FORTNOX_HTTP_TIMEOUT_S": "5",
    })


async def connect(bridge: Bridge, sb: SandboxHandle, fortnox_tenant: int,
                  tenant: str = TENANT, scopes: Sequence[str] = ALL_SCOPES) -> None:
    """The OAuth flow, the sandbox consenting in place of a browser."""
    request = await bridge.adapter.connections.begin_connect(tenant, sb.redirect_uri)
    code = sb.consent_code(fortnox_tenant, sb.redirect_uri, scopes, request.state)
    await bridge.adapter.connections.complete_connect(request.state, code)


@asynccontextmanager
async def serving_bridge(
    sb: SandboxHandle, tmp_path: Path, *, rate_limit: int = 10_000, window_s: float = 1.0,
) -> AsyncIterator[Bridge]:
    """The service built by the composition root, with a fast retry, on a real port."""
    db_path = tmp_path / "bridge.sqlite3"
    settings, provider = bridge_settings(sb, db_path, rate_limit, window_s), TracerProvider()
    async with (
        open_backend(settings) as backend,
        fortnox_adapter(settings, backend, provider, retry=FAST_RETRY) as adapter,
        aclosing(ProcessParsers(1)) as parsers,  # unwarmed: these tests parse no SIE
        build_servicer(settings, provider, backend=backend, fortnox=adapter,
                       parsers=parsers) as servicer,
    ):
        running = await start_server(Address("127.0.0.1", 0), servicer, provider)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                yield Bridge(pb_grpc.FortnoxServiceStub(channel), adapter, db_path)
        finally:
            await running.server.stop(None)
