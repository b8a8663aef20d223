"""Fixtures for the service as real processes: the environment of a development start, and the
database several replicas share (one fresh database per test, for each backend in
``DATABASES``: name -> the ``replica_env`` arguments that point a replica at it)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness.postgres import shared_server


@pytest.fixture
def serve_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a development start of ``fortnox-bridge serve`` on a free port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORTNOX_", "OTEL_"))}
    env.update(
        FORTNOX_BRIDGE_ENV="development",
        FORTNOX_BRIDGE_LISTEN="127.0.0.1:0",
        FORTNOX_BRIDGE_DB_PATH=str(tmp_path / "state" / "bridge.sqlite3"),
        FORTNOX_CLIENT_ID="test-client",
        FORTNOX_CLIENT_SECRET="test-secret",
        FORTNOX_TOKEN_KEY=base64.b64encode(bytes(range(32))).decode(),
    )
    return env


DATABASES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "sqlite": lambda tmp_path: {"db_path": tmp_path / "shared.sqlite3"},
    "postgres": lambda tmp_path: {"database_url": shared_server().create_database()},
}


@pytest.fixture(params=sorted(DATABASES))
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    return DATABASES[request.param](tmp_path)
