"""The composition root: the one place that builds real adapters and hands them to the core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from opentelemetry.sdk.trace import TracerProvider

from adapters.fortnox import FortnoxAdapter, FortnoxSettings
from adapters.sie_parsing import ProcessParsers
from adapters.sqlite_coordination.job_leases import SqliteJobLeases
from adapters.store import SqliteStores
from core.clock import utc_now
from core.errors import StorageUnavailable
from core.jobs import Job, JobRunner
from core.keepalive import JOB_NAME, KeepAlive
from core.ledgers.importer import LedgerImport
from core.sie_import import SieImport
from core.stores import Stores
from core.voucher_export.exporter import VoucherExporter
from server.config import ConfigError, Settings
from server.rpc_connection import ConnectionRpcs
from server.rpc_exports import ExportRpcs
from server.rpc_ledgers import LedgerRpcs
from server.rpc_sie import SieRpcs
from server.servicer import FortnoxServicer

_log = logging.getLogger(__name__)



def fortnox_settings(settings: Settings) -> FortnoxSettings:
    """The adapter's share of the service settings."""
    return FortnoxSettings(
        client_id=settings.fortnox_client_id,
        client_secret=settings.fortnox_client_secret,
        api_base_url=settings.fortnox_api_base_url,
        auth_base_url=settings.fortnox_auth_base_url,
        default_scopes=settings.default_scopes,
        allowed_redirect_uris=settings.allowed_redirect_uris,
        rate_limit_requests=settings.rate_limit_requests,
        rate_limit_window_s=settings.rate_limit_window_s,
        http_timeout_s=settings.http_timeout_s,
    )


def open_stores(settings: Settings) -> Stores:
    """The stores on the configured database: SQLite at ``db_path`` unless a URL is set."""
    stale = timedelta(seconds=settings.import_stale_s)
    if settings.database_url:
        raise ConfigError("FORTNOX_BRIDGE_DATABASE_URL: this build serves SQLite only")
    return SqliteStores(settings.db_path, settings.token_key, clock=utc_now, stale_after=stale)


async def _sweep_abandoned(stores: Stores, every_s: float) -> None:
    """Ends imports whose worker died (another process, or this one before a restart) and
    drops expired OAuth states. A storage fault is logged and the next round tries again."""
    while True:
        try:
            failed = await stores.imports.fail_abandoned()
            if failed:
                _log.warning("marked abandoned imports as failed", extra={"imports": failed})
            purged = await stores.tokens.purge_expired_states(utc_now())
            if purged:
                _log.info("purged expired OAuth states", extra={"states": purged})
        except StorageUnavailable:
            _log.warning("sweeping the history failed; trying again", exc_info=True)
        await asyncio.sleep(every_s)


@asynccontextmanager
async def build_servicer(
    settings: Settings, provider: TracerProvider
) -> AsyncIterator[FortnoxServicer]:
    """Opens the stores and the Fortnox client, yields the servicer, and closes them after."""
    stores = open_stores(settings)
    history, exports = stores.imports, stores.exports
    adapter = FortnoxAdapter(fortnox_settings(settings), stores.tokens, tracer_provider=provider)
    # A claim on a voucher outlives any POST that may still be in flight under it.
    lease = timedelta(seconds=2 * settings.http_timeout_s + 5)
    sweeper = asyncio.create_task(_sweep_abandoned(stores, settings.import_stale_s / 2))
    parsers = ProcessParsers(settings.sie_parsers)
    warming = asyncio.create_task(parsers.warm())
    sie_import = SieImport(adapter.api, adapter.connections, history, parsers, utc_now, provider)
    leases = SqliteJobLeases(settings.db_path)
    keepalive = KeepAlive(adapter.tokens, age=timedelta(days=settings.keepalive_age_days),
                          clock=utc_now)
    jobs = asyncio.create_task(JobRunner(
        leases, f"{socket.gethostname()}:{os.getpid()}",
        [Job(JOB_NAME, settings.keepalive_interval_s, keepalive.run)]).run())
    try:
        yield FortnoxServicer(
            connections=ConnectionRpcs(adapter.connections),
            sie=SieRpcs(sie_import, history),
            ledgers=LedgerRpcs(LedgerImport(adapter.api, history, adapter.connections)),
            exports=ExportRpcs(
                VoucherExporter(adapter.api, exports, settings.closing_series, lease=lease),
                exports,
            ),
        )
    finally:
        for task in (jobs, sweeper, warming):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await sie_import.aclose()
        await parsers.aclose()
        await adapter.aclose()
        await stores.aclose()
        leases.close()
