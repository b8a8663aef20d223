"""The Fortnox adapter's fixtures (a sandbox, a SQLite token store, spans) for these tests too."""

from tests.adapters.conftest import (  # noqa: F401
    clock,
    provider,
    sandbox,
    sandbox_server,
    spans,
    store,
)
