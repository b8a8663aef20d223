"""The whole service in-process against the sandbox (the fixtures of ``tests/service``),
keep-alive quickened, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.testing import SandboxHandle
from server.config import Settings, load_settings
from tests.harness.service import service_env
from tests.service.connections.flows import Database

#: The keep-alive looks every 0.2 s in these tests; connections look idle by their age in
#: the database (``tests.service.connections.flows.age_refresh_token``).
KEEPALIVE_ENV = {"FORTNOX_BRIDGE_KEEPALIVE_INTERVAL_S": "0.2"}


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    return Database(tmp_path / "bridge.sqlite3", url)


def env_for(sandbox: SandboxHandle, database: Database) -> dict[str, str]:
    """The service's environment on ``database``, with the quick keep-alive."""
    return service_env(sandbox.base_url, database.path, database_url=database.url,
                       **KEEPALIVE_ENV)


@pytest.fixture
def settings(sandbox: SandboxHandle, database: Database) -> Settings:
    return load_settings(env_for(sandbox, database))
