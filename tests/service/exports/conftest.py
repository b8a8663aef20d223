"""One sandbox per module (small seed), reset and connected for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sandbox.testing import SandboxHandle, running_sandbox
from tests.harness.bridge import TENANT, Bridge, serving_bridge
from tests.harness.connect import connect
from tests.harness.sandbox import SMALL_SEED, fresh


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxHandle]:
    with running_sandbox(**SMALL_SEED) as sb:
        yield sb


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    return fresh(sandbox_server)


@pytest.fixture
async def bridge(sandbox: SandboxHandle, tmp_path: Path) -> AsyncIterator[Bridge]:
    async with serving_bridge(sandbox, tmp_path) as served:
        await connect(served.stub, TENANT, sandbox.tenants[0])
        yield served
