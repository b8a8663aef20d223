"""The whole service in-process against the sandbox, with its feed holder running: on SQLite
and on PostgreSQL, with a short holder lease and a quick poll."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.testing import SandboxHandle
from server.config import Settings, load_settings
from tests.harness.service import service_env
from tests.service.connections.flows import Database

#: A lease of 2 s, renewed every 2/3 s; streams look for new changes every 0.1 s.
FEED_ENV = {"FORTNOX_BRIDGE_FEED_LEASE_S": "2", "FORTNOX_BRIDGE_FEED_POLL_S": "0.1"}


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    return Database(tmp_path / "bridge.sqlite3", url)


@pytest.fixture
def settings(sandbox: SandboxHandle, database: Database) -> Settings:
    return load_settings(service_env(sandbox.base_url, database.path, database_url=database.url,
                                     **FEED_ENV))
