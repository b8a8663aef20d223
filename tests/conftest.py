"""Fixtures every test area may use: a real PostgreSQL server, started once per session."""

from __future__ import annotations

import pytest

from tests.postgres_server import PostgresServer, shared_server


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """One PostgreSQL server for the whole session, started on first use."""
    return shared_server()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database of the session's server."""
    return postgres_server.create_database()
