"""The service for the ledger and export tests: built by the composition root on the sandbox
and a SQLite file, with a retry policy quick enough for injected faults, served in this
process; the Fortnox client stays reachable for checks behind the service's back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from opentelemetry.sdk.trace import TracerProvider

from adapters.fortnox import FortnoxAdapter
from adapters.sie_parsing import ProcessParsers
from sandbox.testing import ALL_SCOPES, SandboxHandle
from server.config import load_settings
from server.wiring import build_servicer, fortnox_adapter, open_backend
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.sandbox import FAST_RETRY
from tests.harness.service import service_env, serving_servicer

TENANT = "sb-company"


@dataclass
class Bridge:
    """A served bridge: the stub, the Fortnox client it uses, and its SQLite file."""

    stub: pb_grpc.FortnoxServiceStub
    adapter: FortnoxAdapter
    db_path: Path


@asynccontextmanager
async def serving_bridge(
    sb: SandboxHandle, tmp_path: Path, *, rate_limit: int = 10_000, window_s: float = 1.0,
) -> AsyncIterator[Bridge]:
    """The service built by the composition root with ``FAST_RETRY``, asking for every scope,
    within ``rate_limit`` calls per ``window_s``."""
    db_path = tmp_path / "bridge.sqlite3"
    settings = load_settings(service_env(
        sb.base_url, db_path, FORTNOX_DEFAULT_SCOPES=" ".join(ALL_SCOPES),
        FORTNOX_RATE_LIMIT_REQUESTS=str(rate_limit), FORTNOX_RATE_LIMIT_WINDOW_S=str(window_s),
        FORTNOX_HTTP_TIMEOUT_S="5"))
    provider = TracerProvider()
    async with (
        open_backend(settings) as backend,
        fortnox_adapter(settings, backend, provider, retry=FAST_RETRY) as adapter,
        aclosing(ProcessParsers(1)) as parsers,  # unwarmed: these tests parse no SIE
        build_servicer(settings, provider, backend=backend, fortnox=adapter,
                       parsers=parsers) as servicer,
        serving_servicer(servicer, settings, provider) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield Bridge(pb_grpc.FortnoxServiceStub(channel), adapter, db_path)
