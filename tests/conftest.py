"""Fixtures every test area may use: a real PostgreSQL server, started once per session. And
the run's verdict on the shared SIE corpus: its tests skipped is said loudly, never a quiet
pass."""

from __future__ import annotations

import pytest

from tests.harness.postgres import PostgresServer, shared_server
from tests.harness.sie_files import CORPUS, CORPUS_SKIP_REASON


def pytest_configure(config: pytest.Config) -> None:
    """A run without the corpus warns at its start (and says so again at its end)."""
    if not CORPUS.is_dir():
        config.issue_config_time_warning(pytest.PytestWarning(CORPUS_SKIP_REASON), stacklevel=2)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The run's last lines say the corpus conformance did not run, and count the skips."""
    if CORPUS.is_dir():
        return
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if CORPUS_SKIP_REASON in str(getattr(report, "longrepr", ""))
    ]
    terminalreporter.write_sep(
        "!",
        f"SIE CORPUS MISSING at {CORPUS}: third-party conformance NOT RUN "
        f"({len(skipped)} tests skipped)",
        yellow=True,
        bold=True,
    )


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """One PostgreSQL server for the whole session, started on first use."""
    return shared_server()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database of the session's server."""
    return postgres_server.create_database()
