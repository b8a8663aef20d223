"""The connection lifecycle through gRPC against the sandbox."""

from __future__ import annotations

import grpc

from sandbox.testing import SandboxHandle
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import Connection, complete, connect, log_in
from tests.harness.errors import fails


async def test_connect_links_the_company_and_reports_its_state(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    fortnox = sandbox.tenants[1]
    connection = await connect(stub, "acme", fortnox)
    assert connection.state == Connection.STATE_CONNECTED
    assert (connection.tenant, connection.company_name, connection.organisation_number) == (
        "acme", fortnox.name, fortnox.organisation_number)
    assert connection.fortnox_tenant_id == str(fortnox.id)
    assert "bookkeeping" in connection.scopes
    assert connection.access_token_expires_at.seconds > connection.connected_at.seconds
    assert connection.refresh_token_expires_at.seconds > connection.access_token_expires_at.seconds

    got = await stub.GetConnection(pb.GetConnectionRequest(tenant="acme"))
    assert got.connection == connection

    gone = await stub.Disconnect(pb.DisconnectRequest(tenant="acme"))
    assert gone.connection.state == Connection.STATE_REVOKED
    await fails(stub.ImportSie(pb.ImportSieRequest(tenant="acme")).read(),
                 grpc.StatusCode.FAILED_PRECONDITION, "CONNECTION_REVOKED")


async def test_state_is_bound_to_one_use(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    started = await stub.Connect(pb.ConnectRequest(
        tenant="acme", redirect_uri=sandbox.redirect_uri,
        expected_organisation_number=sandbox.tenants[0].organisation_number))
    consent = log_in(started.authorization_url)
    await complete(stub, consent)
    await fails(
        complete(stub, consent),
        grpc.StatusCode.FAILED_PRECONDITION, "OAUTH_STATE_USED",
    )
    await fails(
        stub.CompleteConnect(pb.CompleteConnectRequest(state="never-issued", code="x")),
        grpc.StatusCode.FAILED_PRECONDITION, "OAUTH_STATE_UNKNOWN",
    )


async def test_a_refused_code_is_reported_and_stores_nothing(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    started = await stub.Connect(pb.ConnectRequest(
        tenant="acme", redirect_uri=sandbox.redirect_uri,
        expected_organisation_number=sandbox.tenants[0].organisation_number))
    await fails(
        stub.CompleteConnect(pb.CompleteConnectRequest(state=started.state, code="forged")),
        grpc.StatusCode.FAILED_PRECONDITION, "OAUTH_CODE_REJECTED",
    )
    await fails(stub.GetConnection(pb.GetConnectionRequest(tenant="acme")),
                 grpc.StatusCode.NOT_FOUND, "CONNECTION_NOT_FOUND")


async def test_login_into_another_company_than_expected_is_refused(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    expected, other = sandbox.tenants[0], sandbox.tenants[2]
    started = await stub.Connect(pb.ConnectRequest(
        tenant="acme", redirect_uri=sandbox.redirect_uri,
        expected_organisation_number=expected.organisation_number,
    ))
    consent = log_in(started.authorization_url, company=other.id)
    await fails(
        complete(stub, consent),
        grpc.StatusCode.FAILED_PRECONDITION, "ORGANISATION_NUMBER_MISMATCH",
    )
    await fails(stub.GetConnection(pb.GetConnectionRequest(tenant="acme")),
                 grpc.StatusCode.NOT_FOUND, "CONNECTION_NOT_FOUND")


async def test_the_expected_company_is_matched_on_its_10_digits_however_written(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    fortnox = sandbox.tenants[1]
    twelve_digits = "16" + fortnox.organisation_number.replace("-", "")
    started = await stub.Connect(pb.ConnectRequest(
        tenant="acme", redirect_uri=sandbox.redirect_uri,
        expected_organisation_number=twelve_digits))
    connection = await complete(stub, log_in(started.authorization_url, company=fortnox.id))
    assert (connection.state, connection.organisation_number) == (
        Connection.STATE_CONNECTED, fortnox.organisation_number)


async def test_an_expected_number_that_is_no_organisation_number_is_refused(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    failed = await fails(
        stub.Connect(pb.ConnectRequest(tenant="acme", redirect_uri=sandbox.redirect_uri,
                                       expected_organisation_number="n/a")),
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert "expected_organisation_number" in failed.details()


async def test_requests_are_validated(stub: pb_grpc.FortnoxServiceStub) -> None:
    await fails(stub.Connect(pb.ConnectRequest(tenant="", redirect_uri="x")),
                 grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    await fails(stub.Connect(pb.ConnectRequest(tenant="acme",
                                                redirect_uri="https://evil.example/cb")),
                 grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")


async def test_one_tenant_cannot_reach_another_tenants_connection(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    await connect(stub, "acme")
    await fails(stub.GetConnection(pb.GetConnectionRequest(tenant="acme2")),
                 grpc.StatusCode.NOT_FOUND, "CONNECTION_NOT_FOUND")
    await fails(stub.Disconnect(pb.DisconnectRequest(tenant="other")),
                 grpc.StatusCode.NOT_FOUND, "CONNECTION_NOT_FOUND")
