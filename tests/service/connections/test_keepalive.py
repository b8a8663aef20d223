"""The keep-alive renews idle refresh-token connections so they never lapse (through gRPC
against the sandbox; the service's keep-alive runs every 0.2 s in these tests)."""

from __future__ import annotations

import asyncio

import grpc

from sandbox.testing import SandboxHandle
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import Connection, connect
from tests.harness.errors import fails
from tests.harness.processes import serving
from tests.service.connections.conftest import env_for
from tests.service.connections.flows import (
    Database,
    age_refresh_token,
    connection_of,
    eventually,
    import_books,
)

DAY = 86_400


async def test_an_idle_connection_is_renewed_and_never_lapses(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle, database: Database
) -> None:
    company = sandbox.tenants[0]
    first = await connect(stub, "acme", company)
    await connect(stub, "fresh", sandbox.tenants[1])
    for _ in range(2):  # twice 44 idle days: 88 days, far past the 45 a refresh token lives
        sandbox.advance_clock(44 * DAY)
        age_refresh_token(database, "acme", 44)
        before = sandbox.stats()["tokens"][str(company.id)].get("refreshes", 0)

        async def renewed(before: int = before) -> bool:  # at Fortnox, and stored here
            at_fortnox = sandbox.stats()["tokens"][str(company.id)].get("refreshes", 0)
            here = (await connection_of(stub, "acme")).last_refreshed_at.seconds
            return bool(at_fortnox > before and here >= first.connected_at.seconds)

        await eventually(renewed)
    connection = await connection_of(stub, "acme")
    assert connection.state == Connection.STATE_CONNECTED
    assert connection.last_refreshed_at.seconds >= first.connected_at.seconds
    assert await import_books(stub, "acme") == 1
    # a connection younger than the keep-alive age was left alone
    assert "refreshes" not in sandbox.stats()["tokens"][str(sandbox.tenants[1].id)]


async def test_a_renewal_refused_for_good_requires_reconnect_with_reason_and_time(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle, database: Database
) -> None:
    company = sandbox.tenants[0]
    await connect(stub, "acme", company)
    sandbox.invalidate_refresh_tokens(company.id)
    age_refresh_token(database, "acme", 31)

    async def lapsed() -> bool:
        return (await connection_of(stub, "acme")).state == Connection.STATE_RECONNECT_REQUIRED

    await eventually(lapsed)
    connection = await connection_of(stub, "acme")
    assert "invalid_grant" in connection.state_reason
    assert connection.state_changed_at.seconds > connection.connected_at.seconds - 1
    await fails(import_books(stub, "acme"), grpc.StatusCode.FAILED_PRECONDITION,
                "RECONNECT_REQUIRED")


async def test_two_service_processes_renew_each_connection_once(
    sandbox: SandboxHandle, database: Database
) -> None:
    env = env_for(sandbox, database)
    companies = sandbox.tenants
    with serving(env) as first, serving(env) as second:
        async with grpc.aio.insecure_channel(first.address) as one, \
                grpc.aio.insecure_channel(second.address) as two:
            stubs = [pb_grpc.FortnoxServiceStub(one), pb_grpc.FortnoxServiceStub(two)]
            for n, company in enumerate(companies):
                await connect(stubs[n % 2], f"t{n}", company)
            for n in range(len(companies)):
                age_refresh_token(database, f"t{n}", 31)

            def refreshes() -> list[int]:
                tokens = sandbox.stats()["tokens"]
                return [tokens[str(c.id)].get("refreshes", 0) for c in companies]

            async def all_renewed() -> bool:
                return all(refreshes())

            await eventually(all_renewed)
            await asyncio.sleep(1.5)  # some more passes of both processes' keep-alive
            assert refreshes() == [1] * len(companies)
            for n in range(len(companies)):
                got = await stubs[1 - n % 2].GetConnection(pb.GetConnectionRequest(
                    tenant=f"t{n}"))
                assert got.connection.state == Connection.STATE_CONNECTED
            [(leases,)] = database.rows("SELECT COUNT(*) FROM job_leases WHERE job = ?",
                                        ("fortnox-keepalive",))
            assert leases == 1
