"""One sandbox per test module, started on a free loopback port, reset after each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.testing import SandboxHandle, running_sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox(rate_limit=10_000, rate_window_seconds=1.0) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").reset()


@pytest.fixture
def api(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    """A client of the first tenant's API holding a token with every scope."""
    token = sandbox.tokens()["access_token"]
    with httpx.Client(base_url=sandbox.api_url + "/",
                      headers={"Authorization": f"Bearer {token}",
                               "Accept": "application/json"}, timeout=30) as client:
        yield client
