"""Changes are kept for the retention; a caller whose cursor is behind what the sweep deleted
is told so (it must import again) instead of silently missing changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc

from adapters.postgres import open_postgres
from adapters.postgres.feed import PostgresFeedStore
from adapters.sqlite.feed import SqliteFeedStore
from sandbox.testing import SandboxHandle
from spiris.skattbokslut.fortnox.v1 import book_changes_pb2 as bc
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import connect
from tests.harness.errors import fails
from tests.service.connections.flows import Database
from tests.service.feed.watching import Follower, watch


async def _sweep_everything(database: Database) -> int:
    """The sweep job's work, as if the retention had passed for every change kept."""
    later = datetime.now(UTC) + timedelta(days=1)
    if database.url:
        db = await open_postgres(database.url, max_size=1)
        try:
            return await PostgresFeedStore(db).sweep(later)
        finally:
            await db.close()
    store = SqliteFeedStore(database.path)
    try:
        return await store.sweep(later)
    finally:
        await store.aclose()


async def test_a_cursor_behind_the_sweep_is_refused_and_zero_starts_over(
        stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle, database: Database) -> None:
    company = sandbox.tenants[0]
    await connect(stub, "acme", company)
    await watch(stub, "acme")
    follower = Follower(stub, ["acme"])
    try:
        sandbox.feed_burst(3, [company.id])
        first = await follower.wait_for(3)
    finally:
        await follower.close()
    assert await _sweep_everything(database) == 3
    error = await fails(stub.StreamBookChanges(bc.StreamBookChangesRequest(
        tenants=["acme"], after_cursor=first[0].cursor)).read(),
        grpc.StatusCode.OUT_OF_RANGE, "BOOK_CHANGES_CURSOR_EXPIRED")
    assert "import again" in (error.details() or "")
    sandbox.feed_burst(1, [company.id])
    follower = Follower(stub, ["acme"])  # from 0: what is kept now
    try:
        (kept,) = await follower.wait_for(1)
    finally:
        await follower.close()
    assert kept.cursor > first[-1].cursor
