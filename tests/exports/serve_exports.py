"""A service process serving the export and ledger groups, for the kill -9 test.

``python -m tests.exports.serve_exports API_URL AUTH_URL DB_PATH RATE WINDOW_S`` prints
``serving on HOST:PORT`` and serves until killed (the lead's ``server/wiring.py`` will serve the
same groups in ``fortnox-bridge serve``).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

from adapters.fortnox import FortnoxAdapter, FortnoxSettings
from adapters.store import open_database
from adapters.store.connections import ConnectionStore
from sandbox.options import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URIS
from sandbox.testing import ALL_SCOPES
from server.app import start_server
from server.config import Address
from tests.exports.bridge import FAST_RETRY, servicer

HTTP_TIMEOUT_S = 2.0


async def main(api_url: str, auth_url: str, db_path: Path, rate: int, window_s: float) -> None:
    settings = FortnoxSettings(
        client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, api_base_url=api_url,
        auth_base_url=auth_url, default_scopes=ALL_SCOPES,
        allowed_redirect_uris=DEMO_REDIRECT_URIS, rate_limit_requests=rate,
        rate_limit_window_s=window_s, http_timeout_s=HTTP_TIMEOUT_S)
    store = ConnectionStore(db_path, bytes(range(32)))
    async with FortnoxAdapter(settings, store, retry=FAST_RETRY) as adapter:
        served = servicer(adapter, open_database(db_path),
                          lease=timedelta(seconds=2 * HTTP_TIMEOUT_S))
        running = await start_server(Address("127.0.0.1", 0), served, TracerProvider())
        print(f"serving on 127.0.0.1:{running.port}", flush=True)
        await running.server.wait_for_termination()


if __name__ == "__main__":
    api, auth, path, rate, window = sys.argv[1:6]
    asyncio.run(main(api, auth, Path(path), int(rate), float(window)))
