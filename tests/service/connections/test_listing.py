"""ListConnections, and a truthful answer when CompleteConnect is retried after a lost answer."""

from __future__ import annotations

import grpc

from sandbox.testing import SandboxHandle
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import SERVICE, USER, Connection, complete, connect, log_in, start
from tests.harness.errors import fails
from tests.service.connections.flows import export_one


async def test_list_connections_pages_and_filters(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    companies = sandbox.tenants
    await connect(stub, "t1", companies[0])
    await connect(stub, "t2", companies[1], SERVICE)
    await connect(stub, "t3", companies[2])
    await export_one(stub, "t1")
    await stub.Disconnect(pb.DisconnectRequest(tenant="t3"))

    seen: list[Connection] = []
    token = ""
    while True:
        page = await stub.ListConnections(pb.ListConnectionsRequest(page_size=2,
                                                                    page_token=token))
        seen.extend(page.connections)
        token = page.next_page_token
        if not token:
            break
    assert [c.tenant for c in seen] == ["t1", "t2", "t3"]
    t1, t2, t3 = seen
    assert (t1.account_type, t1.company_name, t1.state) == (
        USER, companies[0].name, Connection.STATE_CONNECTED)
    assert t1.last_export_at.seconds > 0 and "bookkeeping" in t1.scopes
    assert t1.refresh_token_expires_at.seconds > 0 and t1.last_refreshed_at.seconds > 0
    assert t2.account_type == SERVICE and not t2.HasField("refresh_token_expires_at")
    assert t3.state == Connection.STATE_REVOKED and t3.state_reason

    services = await stub.ListConnections(pb.ListConnectionsRequest(account_type=SERVICE))
    assert [c.tenant for c in services.connections] == ["t2"]
    revoked = await stub.ListConnections(pb.ListConnectionsRequest(
        state=Connection.STATE_REVOKED))
    assert [c.tenant for c in revoked.connections] == ["t3"]
    users_connected = await stub.ListConnections(pb.ListConnectionsRequest(
        account_type=USER, state=Connection.STATE_CONNECTED))
    assert [c.tenant for c in users_connected.connections] == ["t1"]

    first = await stub.ListConnections(pb.ListConnectionsRequest(page_size=1))
    await fails(stub.ListConnections(pb.ListConnectionsRequest(
        page_token=first.next_page_token, account_type=SERVICE)),
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    await fails(stub.ListConnections(pb.ListConnectionsRequest(page_size=501)),
                grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")


async def test_a_retry_after_a_lost_token_answer_says_to_start_again(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    company = sandbox.tenants[0]
    started = await start(stub, "acme", company)
    back = log_in(started.authorization_url, user=company.administrator)
    sandbox.add_fault("commit_drop", method="POST", path="/oauth-v1/token", count=1)
    await fails(complete(stub, back), grpc.StatusCode.UNAVAILABLE, "FORTNOX_UNAVAILABLE")
    failed = await fails(complete(stub, back), grpc.StatusCode.FAILED_PRECONDITION,
                         "OAUTH_CONNECT_NOT_COMPLETED")
    assert "Connect again" in failed.details()
    await fails(stub.GetConnection(pb.GetConnectionRequest(tenant="acme")),
                grpc.StatusCode.NOT_FOUND, "CONNECTION_NOT_FOUND")
    again = await start(stub, "acme", company)
    connected = await complete(stub, log_in(again.authorization_url, user=company.administrator))
    assert connected.state == Connection.STATE_CONNECTED
    # a state that did connect is plainly used
    await fails(complete(stub, back | {"state": again.state}), grpc.StatusCode.FAILED_PRECONDITION,
                "OAUTH_STATE_USED")
