"""The composition root: the one place that builds real adapters and hands them to the core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from opentelemetry.sdk.trace import TracerProvider

from adapters.fortnox import FortnoxAdapter, FortnoxSettings
from adapters.fortnox.limiter import RateWindow
from adapters.metered_exports import MeteredExportHistory
from adapters.postgres.job_leases import PostgresJobLeases
from adapters.postgres.rate_window import PostgresRateWindow
from adapters.postgres.stores import PostgresStores
from adapters.sie_parsing import ProcessParsers
from adapters.store import SqliteStores
from adapters.store.job_leases import SqliteJobLeases
from adapters.store.rate_window import SqliteRateWindow
from core.clock import utc_now
from core.errors import StorageUnavailable
from core.jobs import Job, JobLeases, JobRunner, housekeeping_jobs
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
        retry_attempts=settings.http_retry_attempts,
        retry_base_delay_s=settings.http_retry_base_delay_s,
        retry_max_delay_s=settings.http_retry_max_delay_s,
    )


@dataclass(frozen=True)
class Backend:
    """The stores, the rate-limit window and the job leases, all on the configured database,
    so that every replica sharing it shares them."""

    stores: Stores
    rate_window: RateWindow
    leases: JobLeases
    aclose: Callable[[], Awaitable[None]]


async def open_backend(settings: Settings) -> Backend:
    """PostgreSQL at ``database_url`` when set, else the SQLite file at ``db_path``."""
    stale = timedelta(seconds=settings.import_stale_s)
    if settings.database_url:
        try:
            pg = await PostgresStores.open(settings.database_url, settings.token_key,
                                           pool_size=settings.db_pool_size, stale_after=stale)
        except StorageUnavailable as exc:  # the server's reason; libpq never repeats a password
            reason = str(exc.__cause__ or exc).strip().splitlines()[0]
            raise ConfigError(f"FORTNOX_BRIDGE_DATABASE_URL: cannot open the database: {reason}"
                              ) from None
        return Backend(pg, PostgresRateWindow(pg.db), PostgresJobLeases(pg.db), pg.aclose)
    stores = SqliteStores(settings.db_path, settings.token_key, clock=utc_now,
                          stale_after=stale)
    window = SqliteRateWindow(settings.db_path)
    leases = SqliteJobLeases(settings.db_path)

    async def aclose() -> None:
        await leases.aclose()
        await window.aclose()
        await stores.aclose()
    return Backend(stores, window, leases, aclose)


def _owner() -> str:
    """This replica, as job leases name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


@asynccontextmanager
async def build_servicer(
    settings: Settings, provider: TracerProvider
) -> AsyncIterator[FortnoxServicer]:
    """Opens the stores and the Fortnox client, yields the servicer, and closes them after."""
    backend = await open_backend(settings)
    stores = backend.stores
    history, exports = stores.imports, MeteredExportHistory(stores.exports)
    adapter = FortnoxAdapter(fortnox_settings(settings), stores.tokens, tracer_provider=provider,
                             rate_window=backend.rate_window)
    # A claim on a voucher outlives any POST that may still be in flight under it.
    lease = timedelta(seconds=2 * settings.http_timeout_s + 5)
    keepalive = KeepAlive(adapter.tokens, age=timedelta(days=settings.keepalive_age_days),
                          clock=utc_now)
    jobs = [*housekeeping_jobs(history, stores.tokens, utc_now, settings.import_stale_s / 2),
            Job(JOB_NAME, settings.keepalive_interval_s, keepalive.run)]
    runner = asyncio.create_task(JobRunner(backend.leases, _owner(), jobs).run())
    parsers = ProcessParsers(settings.sie_parsers)
    warming = asyncio.create_task(parsers.warm())
    sie_import = SieImport(adapter.api, adapter.connections, history, parsers, utc_now, provider)
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
        for task in (runner, warming):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await sie_import.aclose()
        await parsers.aclose()
        await adapter.aclose()
        await backend.aclose()
