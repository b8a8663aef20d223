"""The token claim's remaining window: from the proof in the database to the request leaving.

Right before a grant request leaves, the worker proves in the database that it still holds
its claim (``TokenStore.hold_claim``). A take-over after that proof and before the request
leaves is not seen; this measures that window on the real path: a TokenManager renewing a
user connection's tokens against the sandbox, on a SQLite file, with an httpx request hook
marking the moment the request is handed to the connection. It also times the proof itself.
``BENCH_SIZE=tiny`` runs 5 renewals; otherwise 300.
Run: `.venv/bin/python -m bench.bench_token_fence`.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from opentelemetry import trace

from adapters.fortnox.adapter import FortnoxAdapter, retry_policy
from adapters.fortnox.oauth import OAuthClient
from adapters.fortnox.tokens import TokenManager
from adapters.sqlite.connections import SqliteTokenStore
from bench.size import sized
from sandbox.testing import running_sandbox
from tests.harness.connect import connect_adapter
from tests.harness.service import sandbox_settings

KEY = bytes(range(32))
TENANT = "bench"


class TimedStore(SqliteTokenStore):
    """The real SQLite store, noting when each proof of a claim began and returned."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, KEY)
        self.proofs: list[tuple[float, float]] = []

    async def hold_claim(self, tenant: str, generation: int, claim_id: str,
                         lease: timedelta) -> None:
        began = time.perf_counter()
        await super().hold_claim(tenant, generation, claim_id, lease)
        self.proofs.append((began, time.perf_counter()))


async def measure(renewals: int, workdir: Path) -> tuple[list[float], list[float]]:
    """(windows, proofs) in milliseconds, one of each per renewal."""
    store = TimedStore(workdir / "bench.sqlite3")
    sent: list[float] = []

    async def leaving(request: httpx.Request) -> None:
        if request.url.path.endswith("/token"):
            sent.append(time.perf_counter())

    with running_sandbox() as sb:
        settings = sandbox_settings(sb.base_url, rate_limit_requests=10_000)
        async with FortnoxAdapter(settings, store) as adapter:
            await connect_adapter(adapter, TENANT)
        async with httpx.AsyncClient(event_hooks={"request": [leaving]}) as http:
            oauth = OAuthClient(http, auth_base_url=sb.auth_url, client_id=sb.client_id,
                                client_secret=sb.client_secret,
                                tracer=trace.get_tracer(__name__), retry=retry_policy(settings),
                                timeout_s=30.0, clock=lambda: datetime.now(UTC),
                                refresh_token_lifetime=timedelta(days=45))
            manager = TokenManager(store, oauth, clock=lambda: datetime.now(UTC),
                                   refresh_margin=timedelta(minutes=5),
                                   max_token_age=timedelta(days=1),
                                   claim_lease=timedelta(seconds=35))
            far = datetime.now(UTC) + timedelta(days=1)
            for _ in range(renewals):
                assert await manager.renew(TENANT, far)
    await store.aclose()
    assert len(sent) == len(store.proofs) == renewals
    windows = [(leave - proved) * 1000 for (_, proved), leave in zip(store.proofs, sent,
                                                                      strict=True)]
    proofs = [(proved - began) * 1000 for began, proved in store.proofs]
    return windows, proofs


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (f"median {statistics.median(ordered):.3f} ms, p95 {p95:.3f} ms,"
            f" max {ordered[-1]:.3f} ms")


def main() -> None:
    """Renews a connection's tokens over and over; prints the window and the proof's time."""
    renewals = sized(300, 5)
    with tempfile.TemporaryDirectory(prefix="bench-fence-") as tmp:
        windows, proofs = asyncio.run(measure(renewals, Path(tmp)))
    print(f"{renewals} token renewals on SQLite against the sandbox")
    print(f"  proof in the database (hold_claim):           {_summary(proofs)}")
    print(f"  window from the proof to the request leaving: {_summary(windows)}")


if __name__ == "__main__":
    main()
