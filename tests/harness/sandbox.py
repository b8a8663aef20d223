"""The sandbox for tests: a shared one made fresh for each test, the seed the small ones use,
the Fortnox client's retries quick enough for its injected faults, and the sandbox in a process
of its own for tests whose service runs as processes too (the in-process sandbox is
``sandbox.testing.running_sandbox``)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from adapters.fortnox.retry import RetryPolicy
from sandbox.testing import SandboxHandle

#: Retries quick enough for the faults a test injects into the sandbox.
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05)

#: A few vouchers and invoices a year: enough for every rule, quick to seed and reset.
SMALL_SEED = {"vouchers_per_year": 30, "invoices_per_year": 10, "supplier_invoices_per_year": 8}


def fresh(sb: SandboxHandle) -> SandboxHandle:
    """A shared sandbox reset to its seed, with a rate limit no test reaches unless it sets
    its own."""
    sb.reset()
    sb.set_rate_limit(10_000, 1.0)
    return sb


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
