"""The service wired to a sandbox: its environment (for a process, or for settings in this
process) and serving it in this process on a real port."""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from sandbox.options import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URIS
from sandbox.testing import ALL_SCOPES
from server.app import RunningServer, start_server
from server.config import Settings, load_settings
from server.wiring import open_service
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc

#: Small windows keep the tests short; the limiter and the in-process sandbox agree on them.
RATE_LIMIT, RATE_WINDOW_S = 25, 0.5


def service_env(sandbox_url: str, db_path: Path | None = None, *, database_url: str = "",
                **settings: str) -> dict[str, str]:
    """The environment of a service wired to the sandbox at ``sandbox_url`` with its demo
    client, on the SQLite file ``db_path`` or the PostgreSQL ``database_url``, with
    ``settings`` (variable name -> value) on top."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("FORTNOX_", "OTEL_"))}
    env = inherited | {
        "FORTNOX_BRIDGE_ENV": "development",
        "FORTNOX_BRIDGE_LISTEN": "127.0.0.1:0",
        "FORTNOX_BRIDGE_DATABASE_URL": database_url,
        "FORTNOX_CLIENT_ID": DEMO_CLIENT_ID,
        "FORTNOX_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "FORTNOX_API_BASE_URL": f"{sandbox_url}/3",
        "FORTNOX_AUTH_BASE_URL": f"{sandbox_url}/oauth-v1",
        "FORTNOX_TOPICS_URL": sandbox_url.replace("http://", "ws://", 1) + "/topics-v1",
        "FORTNOX_REDIRECT_URIS": " ".join(DEMO_REDIRECT_URIS),
        "FORTNOX_TOKEN_KEY": base64.b64encode(bytes(range(32))).decode(),
        "FORTNOX_RATE_LIMIT_REQUESTS": str(RATE_LIMIT),
        "FORTNOX_RATE_LIMIT_WINDOW_S": str(RATE_WINDOW_S),
        "FORTNOX_BRIDGE_SHUTDOWN_GRACE_S": "1",
    }
    if db_path is not None:
        env["FORTNOX_BRIDGE_DB_PATH"] = str(db_path)
    return env | settings


def sandbox_settings(sandbox_url: str, **fields: Any) -> Settings:
    """The service's settings (``service_env``) for a Fortnox client of the sandbox at
    ``sandbox_url`` asking for every scope, with ``fields`` replaced by name: the settings the
    adapter reads (``adapters.fortnox.FortnoxSettings``) are the service's own, and so are
    their defaults."""
    env = service_env(sandbox_url, FORTNOX_DEFAULT_SCOPES=" ".join(ALL_SCOPES))
    return dataclasses.replace(load_settings(env), **fields)


def replica_env(sandbox_url: str, db_path: Path | None = None, *, database_url: str = "",
                **settings: str) -> dict[str, str]:
    """``service_env`` for a replica beside a sandbox process: a rate limit that never binds,
    one SIE parser process, quiet logs."""
    return service_env(sandbox_url, db_path, database_url=database_url, **{
        "FORTNOX_RATE_LIMIT_REQUESTS": "100000",
        "FORTNOX_RATE_LIMIT_WINDOW_S": "1",
        "FORTNOX_BRIDGE_SIE_PARSERS": "1",
        "FORTNOX_BRIDGE_LOG_LEVEL": "warning",
    } | settings)


@asynccontextmanager
async def serving_servicer(
    servicer: pb_grpc.FortnoxServiceServicer, settings: Settings, provider: TracerProvider,
    meter_provider: MeterProvider | None = None,
) -> AsyncIterator[RunningServer]:
    """``servicer`` on a real port in this process, with the server options ``serve`` uses."""
    running = await start_server(settings.listen, servicer, provider,
                                 meter_provider=meter_provider,
                                 connection_age=settings.connection_age)
    try:
        yield running
    finally:
        await running.server.stop(None)


@asynccontextmanager
async def serving_in_process(
    settings: Settings, provider: TracerProvider, meter_provider: MeterProvider | None = None,
) -> AsyncIterator[RunningServer]:
    """The whole service as ``serve`` runs it (its background jobs too), in this process."""
    async with (open_service(settings, provider) as servicer,
                serving_servicer(servicer, settings, provider, meter_provider) as running):
        yield running
