"""The database several replicas share: one fresh database per test, for each backend in
``DATABASES`` (name -> the ``replica_env`` arguments that point a replica at it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness.postgres import shared_server

DATABASES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "sqlite": lambda tmp_path: {"db_path": tmp_path / "shared.sqlite3"},
    "postgres": lambda tmp_path: {"database_url": shared_server().create_database()},
}


@pytest.fixture(params=sorted(DATABASES))
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    return DATABASES[request.param](tmp_path)
