"""ExportVouchers' claims between two replicas on one database (SQLite and PostgreSQL): each
replica is the use case on its own Fortnox client, both on the sandbox, with a lease short
enough that waits outlast it. A wait longer than the lease (here the rate limiter's) must not
let the other replica book the voucher too; a retry under another series finds what the first
attempt booked; and EXPORT_IN_PROGRESS suggests a delay near the holder's finish."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.fortnox import FortnoxAdapter
from adapters.postgres.stores import PostgresStores
from adapters.sqlite import SqliteStores
from core.errors import FortnoxOutcomeUnknown, FortnoxUnavailable
from core.stores import Stores
from core.voucher_export.exporter import VoucherExporter
from core.voucher_export.history import ExportInProgress, ExportStatus
from core.voucher_export.model import (
    ExportRequest,
    ExportRow,
    ExportVoucher,
    Outcome,
    VoucherResult,
    voucher_marker,
)
from sandbox.testing import SandboxHandle
from tests.harness.connect import connect_adapter
from tests.harness.postgres import shared_server
from tests.harness.sandbox import FAST_RETRY
from tests.harness.service import sandbox_settings

TENANT = "sb-company"
TOKEN_KEY = bytes(range(32))
DAY = date(2025, 12, 31)

OpenStores = Callable[[], Awaitable[Stores]]


@pytest.fixture(params=["sqlite", "postgres"])
async def open_stores(request: pytest.FixtureRequest, tmp_path: Path
                      ) -> AsyncIterator[OpenStores]:
    """Opens stores on one database per test, each call as another replica would."""
    url = shared_server().create_database() if request.param == "postgres" else ""
    async with AsyncExitStack() as stack:
        async def open_one() -> Stores:
            if url:
                stores: Stores = await PostgresStores.open(url, TOKEN_KEY, pool_size=4)
            else:
                stores = SqliteStores(tmp_path / "shared.sqlite3", TOKEN_KEY)
            stack.push_async_callback(stores.aclose)
            return stores
        yield open_one


class Replica:
    """One replica's export use case, its Fortnox client and stores."""

    def __init__(self, stores: Stores, adapter: FortnoxAdapter, lease: timedelta) -> None:
        self.stores = stores
        self.adapter = adapter
        self.exporter = VoucherExporter(adapter.api, stores.exports, "I", lease=lease)


async def _replica(stack: AsyncExitStack, open_stores: OpenStores, sb: SandboxHandle,
                   lease: timedelta, **settings: Any) -> Replica:
    stores = await open_stores()
    values: dict[str, Any] = {
        "rate_limit_requests": 10_000, "rate_limit_window_s": 1.0, "http_timeout_s": 5.0,
    } | settings
    # No shared rate window: each replica's limiter is its own, so one can be made to wait.
    adapter = await stack.enter_async_context(FortnoxAdapter(
        sandbox_settings(sb.base_url, **values), stores.tokens, retry=FAST_RETRY))
    return Replica(stores, adapter, lease)


def _voucher(external_id: str, amount: int = 12_300) -> ExportVoucher:
    return ExportVoucher(external_id, DAY, "Periodisering", (
        ExportRow(6110, debit=amount), ExportRow(1930, credit=amount)))


def _request(voucher: ExportVoucher, request_id: str = "", series: str = "") -> ExportRequest:
    return ExportRequest(TENANT, request_id or str(uuid.uuid4()), (voucher,), series=series)


async def _answered(replica: Replica, request: ExportRequest) -> VoucherResult:
    """The request sent to ``replica`` until it is answered (EXPORT_IN_PROGRESS is retried)."""
    deadline = time.monotonic() + 90
    while True:
        try:
            (result,) = (await replica.exporter.export(request)).results
            return result
        except ExportInProgress:
            assert time.monotonic() < deadline, "the export never settled"
            await asyncio.sleep(0.2)


def _booked(sb: SandboxHandle, external_id: str) -> list[dict[str, Any]]:
    marker = voucher_marker(TENANT, external_id)
    return [v for v in sb.created_vouchers(sb.tenants[0].id) if marker in v["Comments"]]


async def _claimed_by_someone(replica: Replica, external_id: str) -> None:
    deadline = time.monotonic() + 60
    while (record := await replica.stores.exports.get(TENANT, external_id)) is None or (
            record.status is not ExportStatus.PENDING):
        assert time.monotonic() < deadline, "the voucher was never claimed"
        await asyncio.sleep(0.02)


async def test_a_rate_limit_wait_longer_than_the_lease_does_not_book_twice(
    sandbox: SandboxHandle, open_stores: OpenStores
) -> None:
    lease = timedelta(seconds=1)
    async with AsyncExitStack() as stack:
        # The waiting replica's limiter admits its checks, then holds the POST for a window
        # several leases long.
        waiting = await _replica(stack, open_stores, sandbox, lease,
                                 rate_limit_requests=4, rate_limit_window_s=4.0)
        other = await _replica(stack, open_stores, sandbox, lease)
        await connect_adapter(other.adapter, TENANT, sandbox.tenants[0].id)
        request = _request(_voucher("wait-1"))
        first = asyncio.create_task(waiting.exporter.export(request))
        await _claimed_by_someone(other, "wait-1")
        # The other replica is asked the same while the first waits for its slot.
        second = await _answered(other, request)
        (answered,) = (await first).results
    booked = _booked(sandbox, "wait-1")
    assert len(booked) == 1
    assert answered.outcome is second.outcome is Outcome.CREATED
    assert answered.number == second.number == booked[0]["VoucherNumber"]


async def test_a_retry_under_another_series_finds_the_first_attempts_voucher(
    sandbox: SandboxHandle, open_stores: OpenStores
) -> None:
    lease = timedelta(seconds=1)
    async with AsyncExitStack() as stack:
        replica = await _replica(stack, open_stores, sandbox, lease)
        await connect_adapter(replica.adapter, TENANT, sandbox.tenants[0].id)
        voucher = _voucher("switch-1")
        # The first POST is booked and its answer lost; every look-up meets 503s.
        sandbox.add_fault("commit_drop", method="POST", path="/3/vouchers", count=1)
        sandbox.add_fault("error", method="GET", path="/3/vouchers/sublist", status=503)
        with pytest.raises((FortnoxUnavailable, FortnoxOutcomeUnknown)):
            await replica.exporter.export(_request(voucher, series="I"))
        assert [v["VoucherSeries"] for v in _booked(sandbox, "switch-1")] == ["I"]
        sandbox.clear_faults()
        # A new request for the same voucher, into another series.
        result = await _answered(replica, _request(voucher, series="A"))
    booked = _booked(sandbox, "switch-1")
    assert len(booked) == 1
    assert (result.outcome, result.series, result.number) == (
        Outcome.CREATED, "I", booked[0]["VoucherNumber"])


async def test_export_in_progress_suggests_a_delay_near_the_holders_finish(
    sandbox: SandboxHandle, open_stores: OpenStores
) -> None:
    lease = timedelta(seconds=60)
    async with AsyncExitStack() as stack:
        holder = await _replica(stack, open_stores, sandbox, lease)
        other = await _replica(stack, open_stores, sandbox, lease)
        await connect_adapter(holder.adapter, TENANT, sandbox.tenants[0].id)
        sandbox.add_fault("latency", method="POST", path="/3/vouchers", latency_ms=4000,
                          count=1)
        request = _request(_voucher("hint-1"))
        held = asyncio.create_task(holder.exporter.export(request))
        await _claimed_by_someone(other, "hint-1")
        with pytest.raises(ExportInProgress) as busy:
            await other.exporter.export(request)
        await held
    delay = busy.value.retry_after_s
    # Not the whole lease (about a minute): the holder's claim plus a typical export.
    assert delay is not None and 0 < delay <= 5
