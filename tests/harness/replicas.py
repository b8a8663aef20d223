"""Several ``fortnox-bridge serve`` processes on one database against one sandbox process.

The database is a parameter: a SQLite file (``db_path``) or a ``database_url``, so the same
helpers start replicas on any backend.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx

from sandbox.options import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URIS
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.processes import ServeProcess, serving

_LISTENING = re.compile(r"sandbox listening on (http://\S+)")


@dataclass
class SandboxProcess:
    """``python -m sandbox`` in a process of its own, steered through ``/_sandbox/``."""

    process: subprocess.Popen[str]
    url: str

    def control(self, method: str, path: str, body: Any = None,
                params: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, f"{self.url}/_sandbox{path}", json=body,
                                 params=params, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def add_fault(self, kind: str, **spec: Any) -> int:
        return int(self.control("POST", "/faults", {"kind": kind, **spec})["added"][0])

    def clear_faults(self) -> None:
        self.control("DELETE", "/faults")

    @property
    def tenant_id(self) -> int:
        return int(self.control("GET", "/tenants")["tenants"][0]["id"])

    def created_vouchers(self) -> list[dict[str, Any]]:
        """Vouchers booked through ``POST /3/vouchers``."""
        return list(self.control("GET", f"/tenants/{self.tenant_id}/vouchers")["Vouchers"])

    def refreshes(self) -> int:
        """Refresh tokens spent (rotations) over every tenant."""
        return sum(events.get("refreshes", 0) for events in self.control(
            "GET", "/stats")["tokens"].values())


@contextmanager
def sandbox_process(*args: str) -> Iterator[SandboxProcess]:
    """A small-seeded sandbox on a free port (extra command-line ``args``), until the block
    ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--listen", "127.0.0.1:0", "--seed", "minimal",
         "--rate-limit", "100000", "--rate-window", "1", *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        match = _LISTENING.search(process.stdout.readline())
        assert match, "the sandbox did not say where it listens"
        yield SandboxProcess(process, match.group(1))
    finally:
        process.kill()
        process.wait()


def replica_env(sandbox_url: str, *, db_path: Path | None = None, database_url: str = "",
                **settings: str) -> dict[str, str]:
    """The environment of a replica: the database, the sandbox's demo client, a generous
    rate limit, and ``settings`` (variable name -> value) on top."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("FORTNOX_", "OTEL_"))}
    env = inherited | {
        "FORTNOX_BRIDGE_ENV": "development",
        "FORTNOX_BRIDGE_LISTEN": "127.0.0.1:0",
        "FORTNOX_BRIDGE_DATABASE_URL": database_url,
        "FORTNOX_CLIENT_ID": DEMO_CLIENT_ID,
        "FORTNOX_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "FORTNOX_API_BASE_URL": f"{sandbox_url}/3",
        "FORTNOX_AUTH_BASE_URL": f"{sandbox_url}/oauth-v1",
        "FORTNOX_REDIRECT_URIS": " ".join(DEMO_REDIRECT_URIS),
        "FORTNOX_TOKEN_KEY": base64.b64encode(bytes(range(32))).decode(),
        "FORTNOX_RATE_LIMIT_REQUESTS": "100000",
        "FORTNOX_RATE_LIMIT_WINDOW_S": "1",
        "FORTNOX_BRIDGE_SHUTDOWN_GRACE_S": "1",
        "FORTNOX_BRIDGE_SIE_PARSERS": "1",
        "FORTNOX_BRIDGE_LOG_LEVEL": "warning",
    }
    if db_path is not None:
        env["FORTNOX_BRIDGE_DB_PATH"] = str(db_path)
    return env | settings


@contextmanager
def replicas(env: dict[str, str], count: int) -> Iterator[list[ServeProcess]]:
    """``count`` serve processes with the same environment, killed at the end."""
    with ExitStack() as stack:
        yield [stack.enter_context(serving(env)) for _ in range(count)]


async def connect(address: str, tenant: str) -> None:
    """Connect, the customer's login at the sandbox, CompleteConnect."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.FortnoxServiceStub(channel)
        started = await stub.Connect(pb.ConnectRequest(
            tenant=tenant, redirect_uri=DEMO_REDIRECT_URIS[0], allow_any_company=True))
        async with httpx.AsyncClient() as http:
            login = await http.get(started.authorization_url)
        code = parse_qs(urlsplit(login.headers["location"]).query)["code"][0]
        await stub.CompleteConnect(pb.CompleteConnectRequest(state=started.state, code=code))
