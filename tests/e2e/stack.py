"""Helpers for tests of the whole service against the sandbox (used by several test folders)."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from opentelemetry.sdk.trace import TracerProvider

from sandbox.testing import SandboxHandle
from server.app import RunningServer, start_server
from server.config import Settings
from server.wiring import open_service
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc

#: Small windows keep the tests short; the limiter and the sandbox agree on them.
RATE_LIMIT, RATE_WINDOW_S = 25, 0.5

def service_env(sb: SandboxHandle, db_path: Path) -> dict[str, str]:
    """The environment of a service wired to the sandbox ``sb`` (for a process or in-process)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("FORTNOX_", "OTEL_"))}
    return inherited | {
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
    company = next(t for t in sb.tenants if fortnox_tenant in (None, t.id))
    started = await stub.Connect(pb.ConnectRequest(
        tenant=tenant, redirect_uri=sb.redirect_uri, scopes=list(scopes),
        expected_organisation_number=company.organisation_number,
    ))
    consent = log_in(started.authorization_url, fortnox_tenant)
    assert consent.state == started.state
    response: pb.CompleteConnectResponse = await stub.CompleteConnect(
        pb.CompleteConnectRequest(state=consent.state, code=consent.code)
    )
    return response


def parser_pids(parent: int | None = None) -> set[int]:
    """The SIE parser processes ``parent`` (default: this test process) started and has not
    reaped."""
    parent = os.getpid() if parent is None else parent
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == parent and b"adapters.sie_parsing.worker" in cmdline:
            pids.add(int(stat.parent.name))
    return pids


def running(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@asynccontextmanager
async def serving_in_process(
    settings: Settings, provider: TracerProvider
) -> AsyncIterator[RunningServer]:
    """The whole service wired as ``serve`` wires it, on a real port in this process."""
    async with open_service(settings, provider) as servicer:
        running = await start_server(settings.listen, servicer, provider)
        try:
            yield running
        finally:
            await running.server.stop(None)
