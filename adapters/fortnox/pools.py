"""Connections to Fortnox in several small pools instead of one large one.

httpcore's pool looks at every one of its connections (a system call each, to see whether the
server closed it, and a count of the idle ones for each idle one) whenever a request takes or
gives back a connection, so a request's cost grows with the pool: with 75 connections open it
was half of the client's CPU per call. The same number of connections split into pools of
``POOL_SIZE``, each request sent through the next pool in turn, keeps that cost small and the
total number of connections as it was. Each pool opens its connections through
``network.AsyncioBackend`` (asyncio's transports, without anyio's streams between).
"""

from __future__ import annotations

import itertools

import httpcore
import httpx

from adapters.fortnox.network import AsyncioBackend

#: Connections of one pool: what each request's bookkeeping looks at.
POOL_SIZE = 16


class SplitPools(httpx.AsyncBaseTransport):
    """``max_connections`` over pools of at most ``POOL_SIZE``, taken in turn."""

    def __init__(self, max_connections: int, keepalive_expiry: float) -> None:
        count = max(1, -(-max_connections // POOL_SIZE))
        size = -(-max_connections // count)
        tls = httpx.create_ssl_context()  # one for all: building one costs tens of ms
        backend = AsyncioBackend()
        self._pools = []
        for _ in range(count):
            pool = httpx.AsyncHTTPTransport(verify=tls)
            # httpx takes no network backend: its transport (the mapping of requests, answers
            # and errors) is kept, over a pool of the same settings with this backend.
            pool._pool = httpcore.AsyncConnectionPool(
                ssl_context=tls, max_connections=size, max_keepalive_connections=size,
                keepalive_expiry=keepalive_expiry, network_backend=backend)
            self._pools.append(pool)
        self._turn = itertools.cycle(self._pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._turn).handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
