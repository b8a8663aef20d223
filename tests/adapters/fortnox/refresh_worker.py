"""A separate worker process sharing one database (run by ``test_tokens``): DB is a SQLite
file or a PostgreSQL URL.

``connect DB BASE``: connects tenant ``shared`` and prints its token generation.
``call DB BASE START_AT``: with a clock two hours ahead (the token is due), waits until
``START_AT`` (epoch seconds) and makes 20 concurrent calls; prints calls and generation.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.fortnox import FortnoxAdapter
from adapters.postgres.stores import PostgresStores
from adapters.sqlite import SqliteStores
from core.stores import Stores
from core.token_store import TokenStore
from server.config import Settings
from tests.harness.connect import connect_adapter
from tests.harness.service import sandbox_settings

KEY = bytes(range(32))
TENANT = "shared"


def _settings(base: str) -> Settings:
    return sandbox_settings(base, rate_limit_requests=1000, rate_limit_window_s=1.0)


async def _connect(store: TokenStore, base: str) -> int:
    async with FortnoxAdapter(_settings(base), store) as adapter:
        await connect_adapter(adapter, TENANT)
    return (await store.current_tokens(TENANT)).generation


async def _call(store: TokenStore, base: str, start_at: float) -> dict[str, int]:
    def ahead() -> datetime:
        return datetime.now(UTC) + timedelta(hours=2)

    async with FortnoxAdapter(_settings(base), store, clock=ahead) as adapter:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        results = await asyncio.gather(
            *(adapter.api.company_information(TENANT) for _ in range(20)))
    return {"calls": len(results), "generation": (await store.current_tokens(TENANT)).generation}


def main() -> None:
    command, db, base = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    print(json.dumps(asyncio.run(_run(command, db, base, sys.argv[4:]))))


async def _run(command: str, db: Path, base: str, args: list[str]) -> dict[str, int]:
    if str(db).startswith("postgresql:"):
        return await _run_on(await PostgresStores.open(sys.argv[2], KEY), command, base, args)
    return await _run_on(SqliteStores(db, KEY), command, base, args)


async def _run_on(stores: Stores, command: str, base: str, args: list[str]) -> dict[str, int]:
    store = stores.tokens
    try:
        if command == "connect":
            return {"generation": await _connect(store, base)}
        return await _call(store, base, float(args[0]))
    finally:
        await stores.aclose()


if __name__ == "__main__":
    main()
