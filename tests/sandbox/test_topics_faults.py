"""The feed's faults (``feed_*`` in :mod:`sandbox.faults`) and dropping on demand, through a
real WebSocket client over real HTTP."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from sandbox.testing import SandboxHandle
from tests.sandbox.test_topics import (
    WAIT,
    bearer,
    connections,
    control,
    emit,
    feed,
    subscribed,
    until,
    ws_url,
)


def emit_many(sandbox: SandboxHandle, tenant: int, count: int,
              **extra: Any) -> list[dict[str, Any]]:
    return [emit(sandbox, tenant, "vouchers", "voucher-created-v1", str(n), **extra)
            for n in range(1, count + 1)]


async def test_a_dropped_connection_loses_nothing_a_replay_cannot_bring_back(
        sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[0].id
    sandbox.add_fault("feed_drop", after=2, count=1)
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [tenant])
        sent = emit_many(sandbox, tenant, 4)
        assert await client.take(2) == sent[:2]
        closed = await asyncio.wait_for(client.closed, WAIT)
        assert isinstance(closed, ConnectionClosed) and closed.rcvd is None  # no close frame
        assert client.events.empty()
    assert connections(sandbox)[-1]["closed"] == "feed_drop fault"
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [tenant],
                         [{"topic": "vouchers", "offset": sent[1]["offset"]}])
        assert await client.take(2) == sent[2:]


async def test_a_connection_can_be_dropped_on_demand(sandbox: SandboxHandle) -> None:
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [sandbox.tenants[0].id])
        assert sandbox.drop_feed() == 1
        closed = await asyncio.wait_for(client.closed, WAIT)
        assert isinstance(closed, ConnectionClosed) and closed.rcvd is None
    assert sandbox.feed_connections()[-1]["closed"] == "dropped on demand"


async def test_duplicated_events_arrive_twice(sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[0].id
    sandbox.add_fault("feed_duplicate", after=1, count=1)
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [tenant])
        sent = emit_many(sandbox, tenant, 3)
        assert await client.take(4) == [sent[0], sent[1], sent[1], sent[2]]
        await client.nothing_more(sandbox)


async def test_a_token_that_expires_mid_subscription_stops_only_its_tenant(
        sandbox: SandboxHandle) -> None:
    first, second = sandbox.tenants[0].id, sandbox.tenants[1].id
    sandbox.add_fault("feed_token_expiry", tenant=first, after=1, count=1)
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [first, second])
        before = emit(sandbox, first, "vouchers", "voucher-created-v1", "1")
        emit(sandbox, first, "vouchers", "voucher-created-v1", "2")
        emit(sandbox, first, "vouchers", "voucher-created-v1", "3")
        other = emit(sandbox, second, "vouchers", "voucher-created-v1", "4")
        assert await client.take(2) == [before, other]
        assert (await client.command({"command": "list-tenants-v1"}))["tenantIds"] == [second]
        assert connections(sandbox)[-1]["stopped_tenants"] == {str(first): "expired"}
        answer = await client.command({"command": "add-tenants-v1",
                                       "clientSecret": sandbox.client_secret,
                                       "accessTokens": [bearer(sandbox, first)]})
        assert answer["result"] == "ok"
        again = emit(sandbox, first, "vouchers", "voucher-created-v1", "5")
        assert await client.event() == again


def _stalling_socket(sandbox: SandboxHandle) -> socket.socket:
    """A connected socket with a tiny receive buffer, so a consumer that stops reading soon
    stops the sandbox's sends."""
    address = urlsplit(sandbox.base_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((address.hostname, address.port))
    sock.setblocking(False)
    return sock


async def _stalled_consumer(sandbox: SandboxHandle, tenant: int) -> ClientConnection:
    ws = await connect(ws_url(sandbox), sock=_stalling_socket(sandbox), max_queue=1,
                       ping_interval=None, open_timeout=WAIT, close_timeout=2)
    for command in ({"command": "add-tenants-v1", "clientSecret": sandbox.client_secret,
                     "accessTokens": [bearer(sandbox, tenant)]},
                    {"command": "add-topics-v1", "topics": [{"topic": "vouchers"}]},
                    {"command": "subscribe-v1"}):
        await ws.send(json.dumps(command))
        assert json.loads(await asyncio.wait_for(ws.recv(), WAIT))["result"] == "ok"
    return ws


#: Events of ~64 kB, enough of them to fill every buffer between the sandbox and a consumer
#: that does not read (the kernel's send buffer grows to 4 MiB).
MANY = 200


def emit_big(sandbox: SandboxHandle, tenant: int) -> list[dict[str, Any]]:
    """``MANY`` events of ~64 kB each, in one request."""
    response = control(sandbox, "POST", "/topics/events", {"events": [
        {"tenant": tenant, "topic": "vouchers", "type": "voucher-created-v1",
         "entityId": str(n), "padding": secrets.token_urlsafe(48_000)}  # no compressing it
        for n in range(MANY)]})
    assert response.status_code == 201, response.text
    return list(response.json()["events"])


async def test_a_slow_consumer_holds_the_sandbox_back_and_misses_nothing(
        sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[0].id
    ws = await _stalled_consumer(sandbox, tenant)
    try:
        sent = emit_big(sandbox, tenant)
        await until(lambda: (c := connections(sandbox)[-1])["sending"] and c["sent"] < MANY,
                    "the sandbox to wait for the consumer")
        assert connections(sandbox)[-1]["closed"] is None
        got = [json.loads(await asyncio.wait_for(ws.recv(), WAIT)) for _ in range(MANY)]
        assert [e["offset"] for e in got] == [e["offset"] for e in sent]
    finally:
        await ws.close()


async def _read_until_closed(ws: ClientConnection) -> tuple[int, ConnectionClosed]:
    """How many messages arrive before the connection closes, and how it closed."""
    received = 0
    while True:
        try:
            await asyncio.wait_for(ws.recv(), WAIT)
        except ConnectionClosed as exc:
            return received, exc
        received += 1


async def test_a_consumer_stalled_past_the_limit_is_dropped(sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[0].id
    sandbox.add_fault("feed_slow_consumer", stall_ms=300)
    ws = await _stalled_consumer(sandbox, tenant)
    try:
        emit_big(sandbox, tenant)
        await until(lambda: connections(sandbox)[-1]["closed"] == "slow consumer",
                    "the sandbox to drop the stalled consumer")
        received, closed = await _read_until_closed(ws)
        assert closed.rcvd is None  # dropped, no close frame
        assert 0 < received < MANY
    finally:
        await ws.close()
