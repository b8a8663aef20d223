"""The composition root: the one place that builds real adapters and hands them to the core.

``build_servicer`` builds the servicer on the parts it is given (a test gives its own);
``running_jobs`` runs the background jobs beside it; ``open_service`` opens the real parts and
runs both, as ``serve`` does.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from opentelemetry.sdk.trace import TracerProvider

from adapters.backend import Backend
from adapters.clock_skew import ClockSkewWatch
from adapters.fortnox import FortnoxAdapter
from adapters.fortnox.feed import SharedFeedTokens, TopicsClient
from adapters.fortnox.retry import RetryPolicy
from adapters.metered_exports import MeteredExportHistory
from adapters.metered_feed import MeteredHolderStore
from adapters.postgres import PostgresStores
from adapters.sie_parsing import ProcessParsers
from adapters.sqlite import SqliteStores
from core.clock import Clock, utc_now
from core.connecting import Connecting
from core.errors import StorageUnavailable
from core.feed.changes import BookChanges
from core.feed.holder import FeedHolder, HolderSettings
from core.feed.watching import Watching, WatchLimits
from core.jobs import Job, JobRunner, housekeeping_jobs
from core.keepalive import JOB_NAME, KeepAlive
from core.ledgers.importer import LedgerImport
from core.sie_import import SieImport
from core.sie_parse import SieParsers
from core.voucher_documents import RateLimit, VoucherDocuments
from core.voucher_export.exporter import VoucherExporter
from server.background import in_background
from server.config import ConfigError, Settings
from server.record_wire import PARSER_RECORD_ENCODER
from server.rpc_connection import ConnectionRpcs
from server.rpc_documents import DocumentRpcs
from server.rpc_exports import ExportRpcs
from server.rpc_feed import FeedRpcs
from server.rpc_ledgers import LedgerRpcs
from server.rpc_sie import SieRpcs
from server.servicer import assemble
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc


@asynccontextmanager
async def open_backend(settings: Settings) -> AsyncIterator[Backend]:
    """The stores bundle on PostgreSQL at ``database_url`` when set, else on the SQLite file at
    ``db_path``; closed when the block ends."""
    stale = timedelta(seconds=settings.import_stale_s)
    backend: Backend
    if settings.database_url:
        try:
            backend = await PostgresStores.open(settings.database_url, settings.token_key,
                                                pool_size=settings.db_pool_size, stale_after=stale)
        except StorageUnavailable as exc:  # the server's reason; libpq never repeats a password
            reason = str(exc.__cause__ or exc).strip().splitlines()[0]
            raise ConfigError(f"FORTNOX_BRIDGE_DATABASE_URL: cannot open the database: "
                              f"{reason}") from None
    else:
        backend = SqliteStores(settings.db_path, settings.token_key, clock=utc_now,
                               stale_after=stale)
    try:
        yield backend
    finally:
        await backend.aclose()


def fortnox_adapter(settings: Settings, backend: Backend, provider: TracerProvider, *,
                    retry: RetryPolicy | None = None) -> FortnoxAdapter:
    """The Fortnox client on the backend's tokens and rate window (``async with`` closes it)."""
    return FortnoxAdapter(settings, backend.tokens,
                          tracer_provider=provider, retry=retry, rate_window=backend.rate_window,
                          clock=backend.database_clock)


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
            parsers = ProcessParsers(settings.sie_parsers, PARSER_RECORD_ENCODER)
            opened.push_async_callback(parsers.aclose)
            await opened.enter_async_context(in_background(parsers.warm(), "warm sie parser"))
        history, exports = backend.imports, MeteredExportHistory(backend.exports)
        records = backend.tokens  # connections read straight from their store
        sie_import = SieImport(fortnox.api, records, history, parsers, clock, provider)
        opened.push_async_callback(sie_import.aclose)
        lease = export_lease(settings)
        yield assemble(
            ConnectionRpcs(connecting(settings, backend, fortnox)),
            SieRpcs(sie_import, history, backend.feed),
            LedgerRpcs(LedgerImport(fortnox.api, history, records)),
            ExportRpcs(
                VoucherExporter(fortnox.api, exports, settings.closing_series, lease=lease),
                exports,
            ),
            DocumentRpcs(VoucherDocuments(fortnox.api, records, rate_limit=RateLimit(
                settings.rate_limit_requests, settings.rate_limit_window_s))),
            FeedRpcs(
                Watching(backend.feed, records, clock, watch_limits(settings)),
                book_changes(settings, backend, clock),
            ),
        )


def connecting(settings: Settings, backend: Backend, fortnox: FortnoxAdapter) -> Connecting:
    """The connection lifecycle over the backend's token store and Fortnox's login, its states
    and connections dated by the database's time as the Fortnox client's tokens are."""
    return Connecting(backend.tokens, fortnox.login,
                      default_scopes=settings.default_scopes,
                      allowed_redirect_uris=settings.allowed_redirect_uris,
                      clock=backend.database_clock)


def watch_limits(settings: Settings) -> WatchLimits:
    """How long and how many watches may run."""
    return WatchLimits(max_duration=timedelta(days=settings.feed.watch_max_days),
                       max_watched=settings.feed.watch_max_tenants)


def book_changes(settings: Settings, backend: Backend, clock: Clock = utc_now) -> BookChanges:
    """The recorded changes as callers read them and the sweep deletes them."""
    return BookChanges(backend.feed, clock, poll_s=settings.feed.poll_s,
                       retention=timedelta(days=settings.feed.retention_days),
                       export_settles_within=export_lease(settings))


def export_lease(settings: Settings) -> timedelta:
    """How long a claim on a voucher's export lasts: it outlives any POST that may still be
    in flight under it."""
    return timedelta(seconds=2 * settings.http_timeout_s + 5)


def feed_holder(settings: Settings, backend: Backend, fortnox: FortnoxAdapter,
                provider: TracerProvider | None = None, owner: str | None = None) -> FeedHolder:
    """This replica's candidate for holding Fortnox's change feed."""
    return FeedHolder(
        MeteredHolderStore(backend.feed, provider),
        TopicsClient(settings.feed.topics_url, settings.fortnox_client_secret, provider),
        SharedFeedTokens(fortnox.tokens, settings.http_timeout_s),
        owner or f"{_owner()}:{uuid.uuid4().hex[:8]}", clock=utc_now,
        settings=HolderSettings(lease_s=settings.feed.lease_s,
                                sync_every_s=min(2.0, settings.feed.lease_s / 3)),
    )


#: The sweep of book changes older than the retention, once an hour by one replica.
SWEEP_CHANGES_JOB, SWEEP_CHANGES_EVERY_S = "sweep-book-changes", 3600.0


def _owner() -> str:
    """This replica, as job leases name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


@asynccontextmanager
async def running_jobs(settings: Settings, backend: Backend, fortnox: FortnoxAdapter,
                       provider: TracerProvider | None = None) -> AsyncIterator[None]:
    """Runs this replica's background jobs while the block lasts: the sweeps of abandoned
    imports, OAuth states and old book changes, the keep-alive, and the candidate for holding
    the change feed (a lease in the database gives each period's run to one replica, and the
    feed to one replica at a time); and on every replica, the watch on its clock's offset from
    the database's."""
    keepalive = KeepAlive(fortnox.tokens, age=timedelta(days=settings.keepalive_age_days),
                          clock=utc_now)
    changes = book_changes(settings, backend)

    async def sweep_changes() -> None:
        await changes.sweep()
    jobs = [*housekeeping_jobs(backend.imports, backend.tokens, utc_now,
                               settings.import_stale_s / 2),
            Job(JOB_NAME, settings.keepalive_interval_s, keepalive.run),
            Job(SWEEP_CHANGES_JOB, SWEEP_CHANGES_EVERY_S, sweep_changes)]
    skew = ClockSkewWatch(backend.database_time, warn_after_s=settings.clock_skew_warn_s,
                          database_clock=backend.database_clock)
    async with (
        in_background(JobRunner(backend.leases, _owner(), jobs).run(), "jobs"),
        in_background(feed_holder(settings, backend, fortnox, provider).run(),
                      "fortnox feed holder"),
        in_background(skew.run(), "clock skew watch"),
    ):
        yield


@asynccontextmanager
async def open_service(settings: Settings, provider: TracerProvider
                       ) -> AsyncIterator[pb_grpc.FortnoxServiceServicer]:
    """What ``serve`` runs: the servicer on real parts, and the background jobs beside it."""
    async with (
        open_backend(settings) as backend,
        fortnox_adapter(settings, backend, provider) as fortnox,
        build_servicer(settings, provider, backend=backend, fortnox=fortnox) as servicer,
        running_jobs(settings, backend, fortnox, provider),
    ):
        yield servicer
