"""The whole service in-process against the sandbox (the e2e fixtures), keep-alive quickened."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.testing import SandboxHandle
from server.config import Settings, load_settings
from tests.e2e.conftest import sandbox, service, spans, stub
from tests.e2e.stack import service_env

__all__ = ["sandbox", "service", "spans", "stub"]

#: The keep-alive looks every 0.2 s in these tests; connections look idle by their age in
#: the database (``tests.connections.flows.age_refresh_token``).
KEEPALIVE_ENV = {"FORTNOX_BRIDGE_KEEPALIVE_INTERVAL_S": "0.2"}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bridge.sqlite3"


@pytest.fixture
def settings(sandbox: SandboxHandle, db_path: Path) -> Settings:
    return load_settings(service_env(sandbox, db_path) | KEEPALIVE_ENV)
