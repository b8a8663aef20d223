"""An in-process bridge for the ledger and export tests: the real adapter against a running
sandbox, a real SQLite file, and a real gRPC server and channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
from opentelemetry.sdk.trace import TracerProvider

from adapters.fortnox import FortnoxAdapter, FortnoxSettings
from adapters.fortnox.retry import RetryPolicy
from adapters.store import SqliteStores
from core.ledgers.importer import LedgerImport
from core.voucher_export.exporter import VoucherExporter
from sandbox.testing import ALL_SCOPES, SandboxHandle
from server.app import start_server
from server.config import Address
from server.rpc_exports import ExportRpcs
from server.rpc_ledgers import LedgerRpcs
from server.servicer import FortnoxServicer
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc

TENANT = "sb-company"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05)


@dataclass
class Bridge:
    """A served bridge: the stub, the adapter (for connecting) and the SQLite file."""

    stub: pb_grpc.FortnoxServiceStub
    adapter: FortnoxAdapter
    db_path: Path


def adapter_settings(sb: SandboxHandle, rate_limit: int, window_s: float) -> FortnoxSettings:
    """Adapter settings pointing at the sandbox with its demo client."""
    return FortnoxSettings(
        client_id=sb.client_id, client_secret=sb.client_secret, api_base_url=sb.api_url,
        auth_base_url=sb.auth_url, default_scopes=ALL_SCOPES,
        allowed_redirect_uris=tuple(sb.redirect_uris), rate_limit_requests=rate_limit,
        rate_limit_window_s=window_s, http_timeout_s=5.0)


async def connect(bridge: Bridge, sb: SandboxHandle, fortnox_tenant: int,
                  tenant: str = TENANT, scopes: Sequence[str] = ALL_SCOPES) -> None:
    """The OAuth flow, the sandbox consenting in place of a browser."""
    request = await bridge.adapter.connections.begin_connect(tenant, sb.redirect_uri)
    code = sb.consent_code(fortnox_tenant, sb.redirect_uri, scopes, request.state)
    await bridge.adapter.connections.complete_connect(request.state, code)


def servicer(adapter: FortnoxAdapter, stores: SqliteStores,
             lease: timedelta = timedelta(seconds=60)) -> FortnoxServicer:
    """The ledger and export groups wired the way the composition root wires them."""
    return FortnoxServicer(
        ledgers=LedgerRpcs(LedgerImport(adapter.api, stores.imports, adapter.connections)),
        exports=ExportRpcs(VoucherExporter(adapter.api, stores.exports, "I", lease=lease),
                           stores.exports),
    )


@asynccontextmanager
async def serving_bridge(
    sb: SandboxHandle, tmp_path: Path, *, rate_limit: int = 10_000, window_s: float = 1.0,
) -> AsyncIterator[Bridge]:
    """Builds and serves the ledger and export RPCs the way the composition root does."""
    db_path = tmp_path / "bridge.sqlite3"
    stores = SqliteStores(db_path, bytes(range(32)))
    try:
        async with FortnoxAdapter(adapter_settings(sb, rate_limit, window_s), stores.tokens,
                                  retry=FAST_RETRY) as adapter:
            running = await start_server(Address("127.0.0.1", 0), servicer(adapter, stores),
                                         TracerProvider())
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                    yield Bridge(pb_grpc.FortnoxServiceStub(channel), adapter, db_path)
            finally:
                await running.server.stop(None)
    finally:
        await stores.aclose()
