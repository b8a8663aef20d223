"""A replica whose PostgreSQL server goes away: it answers ``UNAVAILABLE`` with
``STORAGE_UNAVAILABLE`` at once, keeps serving its health check, and recovers by itself when the
server is back on the same port, without a restart.

The server is one of this test's own: stopping the session's server would pull the floor from
every other test.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import date

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sandbox.options import DEMO_REDIRECT_URIS
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import connect
from tests.harness.errors import error_info
from tests.harness.postgres import PostgresServer, running_postgres
from tests.harness.processes import serving
from tests.harness.sandbox import sandbox_process
from tests.harness.service import replica_env
from tests.harness.vouchers import many, request

#: Well under any wait a caller would call a hang; a pool that waits for a connection that
#: cannot come answers ``DEADLINE_EXCEEDED`` instead and fails the test.
DEADLINE_S = 8.0

#: How long the server stays away after the calls above (a restart's or a fail-over's length).
OUTAGE_S = 15.0

#: How soon after the server is back every call must succeed again.
RECOVERY_S = 5.0

Call = Callable[[pb_grpc.FortnoxServiceStub], Awaitable[object]]


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


async def _read(stub: pb_grpc.FortnoxServiceStub) -> object:
    return await stub.GetConnection(pb.GetConnectionRequest(tenant="acme"), timeout=DEADLINE_S)


async def _list(stub: pb_grpc.FortnoxServiceStub) -> object:
    return await stub.ListImports(pb.ListImportsRequest(tenant="acme"), timeout=DEADLINE_S)


async def _write(stub: pb_grpc.FortnoxServiceStub) -> object:
    return await stub.Connect(pb.ConnectRequest(
        tenant="other", redirect_uri=DEMO_REDIRECT_URIS[0], allow_any_company=True),
        timeout=DEADLINE_S)


async def _export(stub: pb_grpc.FortnoxServiceStub) -> object:
    return await stub.ExportVouchers(request("acme", many("outage", date(2025, 12, 31), 1)),
                                     timeout=DEADLINE_S)


CALLS: dict[str, Call] = {
    "GetConnection": _read, "ListImports": _list, "Connect": _write, "ExportVouchers": _export}


async def _healthy(channel: grpc.aio.Channel) -> bool:
    check = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=DEADLINE_S)
    return bool(check.status == health_pb2.HealthCheckResponse.SERVING)


async def test_a_stopped_database_answers_storage_unavailable_and_the_replica_recovers(
    own_server: PostgresServer,
) -> None:
    with sandbox_process() as sandbox:
        env = replica_env(sandbox.url, database_url=own_server.create_database())
        with serving(env) as served:
            await connect(served.address, "acme")
            async with grpc.aio.insecure_channel(served.address) as channel:
                stub = pb_grpc.FortnoxServiceStub(channel)
                own_server.stop("fast")
                for name, call in CALLS.items():
                    with pytest.raises(grpc.aio.AioRpcError) as away:
                        await call(stub)
                    assert away.value.code() == grpc.StatusCode.UNAVAILABLE, (
                        name, away.value.code(), away.value.details())
                    assert error_info(away.value).reason == "STORAGE_UNAVAILABLE", name
                assert await _healthy(channel)
                assert served.process.poll() is None
                await asyncio.sleep(OUTAGE_S)  # long enough for a pool's reconnect backoff to grow
                assert await _healthy(channel) and served.process.poll() is None

                own_server.start()
                deadline = time.monotonic() + RECOVERY_S
                for name, call in CALLS.items():
                    while (code := await _code(call, stub)) != grpc.StatusCode.OK:
                        assert code == grpc.StatusCode.UNAVAILABLE, (name, code)
                        assert time.monotonic() < deadline, f"{name} not back in {RECOVERY_S} s"
                        await asyncio.sleep(0.2)
                answer = await _read(stub)
                assert isinstance(answer, pb.GetConnectionResponse)
                assert answer.connection.tenant == "acme"
            served.process.send_signal(signal.SIGTERM)
            assert served.process.wait(timeout=20) == 0


async def _code(call: Call, stub: pb_grpc.FortnoxServiceStub) -> grpc.StatusCode:
    try:
        await call(stub)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK
