"""Watching a tenant and reading its stream of book changes, as the feed's tests do."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import grpc
from google.protobuf.duration_pb2 import Duration

from spiris.skattbokslut.fortnox.v1 import book_changes_pb2 as bc
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc

#: Generous: the machine is shared and loaded; every wait ends as soon as its condition holds.
WAIT_S = 60.0


async def watch(stub: pb_grpc.FortnoxServiceStub, tenant: str, *, hours: int = 24) -> bc.Watch:
    """WatchTenant, then waits until the holder has added the tenant to the feed."""
    await stub.WatchTenant(bc.WatchTenantRequest(tenant=tenant,
                                                 duration=Duration(seconds=hours * 3600)))
    return await until(stub, tenant, lambda w: w.fortnox_tenant_id != 0)


async def until(stub: pb_grpc.FortnoxServiceStub, tenant: str,
                condition: Callable[[bc.Watch], bool]) -> bc.Watch:
    """The tenant's watch once ``condition`` holds for it."""
    give_up = time.monotonic() + WAIT_S
    while True:
        answer: bc.GetWatchResponse = await stub.GetWatch(bc.GetWatchRequest(tenant=tenant))
        if condition(answer.watch):
            return answer.watch
        assert time.monotonic() < give_up, f"the watch never got there: {answer.watch}"
        await asyncio.sleep(0.1)


class Follower:
    """A StreamBookChanges call read in the background into ``changes``."""

    def __init__(self, stub: pb_grpc.FortnoxServiceStub, tenants: list[str],
                 after: int = 0) -> None:
        self.changes: list[bc.BookChange] = []
        self._call = stub.StreamBookChanges(
            bc.StreamBookChangesRequest(tenants=tenants, after_cursor=after))
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for answer in self._call:
            self.changes.append(answer.change)

    async def wait_for(self, count: int) -> list[bc.BookChange]:
        """The first ``count`` changes, once that many have come."""
        give_up = time.monotonic() + WAIT_S
        while len(self.changes) < count:
            if self._task.done():
                self._task.result()  # the stream failed: say how
            assert time.monotonic() < give_up, f"only {len(self.changes)} of {count} came"
            await asyncio.sleep(0.05)
        return self.changes[:count]

    async def close(self) -> None:
        """Ends the call (the caller goes away)."""
        self._call.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await self._task
