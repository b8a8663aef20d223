"""The service's state as one bundle of ports, opened by the composition root on one backend.

Several processes may open stores on the same database at once; everything that must happen
once is claimed inside it.
"""

from __future__ import annotations

from typing import Protocol

from core.imports import ImportHistory
from core.token_store import TokenStore
from core.voucher_export.history import ExportHistory


class Stores(Protocol):
    """The three stores on one database, closed together."""

    @property
    def tokens(self) -> TokenStore:
        """Connections, tokens and OAuth states (tokens for the Fortnox adapter only)."""
        ...

    @property
    def imports(self) -> ImportHistory:
        """The import history."""
        ...

    @property
    def exports(self) -> ExportHistory:
        """The voucher export record."""
        ...

    async def aclose(self) -> None:
        """Closes the stores after the calls already running in them have finished."""
        ...

