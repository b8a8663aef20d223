"""The composition root: the one place that builds real adapters and hands them to the core.

``build_servicer`` builds the servicer on the parts it is given (a test gives its own);
``running_jobs`` runs the background jobs beside it; ``open_service`` opens the real parts and
runs both, as ``serve`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from adapters.fortnox import FortnoxAdapter
from adapters.fortnox.limiter import RateWindow
from adapters.fortnox.retry import RetryPolicy
from adapters.metered_exports import MeteredExportHistory
from adapters.postgres.job_leases import PostgresJobLeases
from adapters.postgres.rate_window import PostgresRateWindow
from adapters.postgres.stores import PostgresStores
from adapters.sie_parsing import ProcessParsers
from adapters.store import SqliteStores
from adapters.store.job_leases import SqliteJobLeases
from adapters.store.rate_window import SqliteRateWindow
from core.clock import Clock, utc_now
from core.errors import StorageUnavailable
from core.jobs import Job, JobLeases, JobRunner, housekeeping_jobs
from core.keepalive import JOB_NAME, KeepAlive
from core.ledgers.importer import LedgerImport
from core.sie_import import SieImport
from core.sie_parse import SieParsers
from core.stores import Stores
from core.voucher_documents import RateLimit, VoucherDocuments
from core.voucher_export.exporter import VoucherExporter
from server.config import ConfigError, Settings
from server.rpc_connection import ConnectionRpcs
from server.rpc_documents import DocumentRpcs
from server.rpc_exports import ExportRpcs
from server.rpc_ledgers import LedgerRpcs
from server.rpc_sie import SieRpcs
from server.servicer import assemble
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc


@dataclass(frozen=True)
class Backend:
    """The stores, the rate-limit window and the job leases, all on the configured database,
    so that every replica sharing it shares them."""

    stores: Stores
    rate_window: RateWindow
    leases: JobLeases


@asynccontextmanager
async def open_backend(settings: Settings) -> AsyncIterator[Backend]:
    """PostgreSQL at ``database_url`` when set, else the SQLite file at ``db_path``; closed
    when the block ends."""
    stale = timedelta(seconds=settings.import_stale_s)
    async with contextlib.AsyncExitStack() as opened:
        if settings.database_url:
            try:
                pg = await PostgresStores.open(settings.database_url, settings.token_key,
                                               pool_size=settings.db_pool_size, stale_after=stale)
            except StorageUnavailable as exc:  # the server's reason; libpq never repeats a password
                reason = str(exc.__cause__ or exc).strip().splitlines()[0]
                raise ConfigError(f"FORTNOX_BRIDGE_DATABASE_URL: cannot open the database: "
                                  f"{reason}") from None
            opened.push_async_callback(pg.aclose)
            backend = Backend(pg, PostgresRateWindow(pg.db), PostgresJobLeases(pg.db))
        else:
            stores = SqliteStores(settings.db_path, settings.token_key, clock=utc_now,
                                  stale_after=stale)
            opened.push_async_callback(stores.aclose)
            window = SqliteRateWindow(settings.db_path)
            opened.push_async_callback(window.aclose)
            leases = SqliteJobLeases(settings.db_path)
            opened.push_async_callback(leases.aclose)
            backend = Backend(stores, window, leases)
        yield backend


def fortnox_adapter(settings: Settings, backend: Backend, provider: TracerProvider, *,
                    retry: RetryPolicy | None = None) -> FortnoxAdapter:
    """The Fortnox client on the backend's tokens and rate window (``async with`` closes it)."""
    return FortnoxAdapter(settings, backend.stores.tokens,
                          tracer_provider=provider, retry=retry, rate_window=backend.rate_window)


@asynccontextmanager
async def _in_background(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Runs ``work`` while the block lasts, and cancels it when the block ends."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def build_servicer(
    settings: Settings,
    provider: TracerProvider,
    *,
    backend: Backend,
    fortnox: FortnoxAdapter,
    parsers: SieParsers | None = None,
    clock: Clock = utc_now,
) -> AsyncIterator[pb_grpc.FortnoxServiceServicer]:
    """Yields the servicer built on the parts given (the SIE parser processes opened here
    unless given); the caller opens and closes the backend and the Fortnox client."""
    async with contextlib.AsyncExitStack() as opened:
        if parsers is None:  # the real pool, one process started ahead of the first import
            parsers = ProcessParsers(settings.sie_parsers)
            opened.push_async_callback(parsers.aclose)
            await opened.enter_async_context(_in_background(parsers.warm()))
        history, exports = backend.stores.imports, MeteredExportHistory(backend.stores.exports)
        sie_import = SieImport(fortnox.api, fortnox.connections, history, parsers, clock,
                               provider)
        opened.push_async_callback(sie_import.aclose)
        # A claim on a voucher outlives any POST that may still be in flight under it.
        lease = timedelta(seconds=2 * settings.http_timeout_s + 5)
        yield assemble(
            ConnectionRpcs(fortnox.connections),
            SieRpcs(sie_import, history),
            LedgerRpcs(LedgerImport(fortnox.api, history, fortnox.connections)),
            ExportRpcs(
                VoucherExporter(fortnox.api, exports, settings.closing_series, lease=lease),
                exports,
            ),
            DocumentRpcs(VoucherDocuments(fortnox.api, fortnox.connections, rate_limit=RateLimit(
                settings.rate_limit_requests, settings.rate_limit_window_s))),
        )


def _owner() -> str:
    """This replica, as job leases name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


@asynccontextmanager
async def running_jobs(settings: Settings, backend: Backend, fortnox: FortnoxAdapter
                       ) -> AsyncIterator[None]:
    """Runs this replica's background jobs while the block lasts: the sweeps of abandoned
    imports and OAuth states, and the keep-alive. A lease in the database gives each period's
    run to one replica."""
    keepalive = KeepAlive(fortnox.tokens, age=timedelta(days=settings.keepalive_age_days),
                          clock=utc_now)
    jobs = [*housekeeping_jobs(backend.stores.imports, backend.stores.tokens, utc_now,
                               settings.import_stale_s / 2),
            Job(JOB_NAME, settings.keepalive_interval_s, keepalive.run)]
    async with _in_background(JobRunner(backend.leases, _owner(), jobs).run()):
        yield


@asynccontextmanager
async def open_service(settings: Settings, provider: TracerProvider
                       ) -> AsyncIterator[pb_grpc.FortnoxServiceServicer]:
    """What ``serve`` runs: the servicer on real parts, and the background jobs beside it."""
    async with (
        open_backend(settings) as backend,
        fortnox_adapter(settings, backend, provider) as fortnox,
        build_servicer(settings, provider, backend=backend, fortnox=fortnox) as servicer,
        running_jobs(settings, backend, fortnox),
    ):
        yield servicer
