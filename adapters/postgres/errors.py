"""The one place a PostgreSQL fault becomes a domain error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import psycopg_pool

from core.errors import StorageUnavailable

#: What a caller may retry: the server is down, unreachable, restarting, too busy, or chose
#: this transaction as a deadlock's or a serialization conflict's victim.
_TRANSIENT = (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed)


@asynccontextmanager
async def storage_errors() -> AsyncIterator[None]:
    """Turns a transient database fault inside the block into ``StorageUnavailable``."""
    try:
        yield
    except _TRANSIENT as exc:
        raise StorageUnavailable(
            "The service's database is not available; try again shortly.",
            metadata={"error": type(exc).__name__},
        ) from exc
