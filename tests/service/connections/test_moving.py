"""Moving a tenant from refresh tokens to a service account, and the login-swap guard."""

from __future__ import annotations

import grpc

from sandbox.testing import SandboxHandle
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import SERVICE, USER, Connection, complete, connect, log_in, start
from tests.harness.errors import fails
from tests.service.connections.flows import (
    Database,
    connection_of,
    export_one,
    import_books,
    stored,
)


async def test_moving_to_a_service_account_keeps_working_throughout(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle, database: Database
) -> None:
    company = sandbox.tenants[0]
    await connect(stub, "acme", company)
    before = await export_one(stub, "acme")
    old = await connection_of(stub, "acme")
    started = await start(stub, "acme", company, SERVICE)
    # the login is under way: the old connection still serves
    assert (await connection_of(stub, "acme")) == old
    assert await import_books(stub, "acme") == 1
    during = await export_one(stub, "acme")
    moved = await complete(stub, log_in(started.authorization_url, user=company.administrator))
    assert moved.account_type == SERVICE
    assert moved.state == Connection.STATE_CONNECTED
    assert stored(database, "acme", "refresh_token") is None
    assert await import_books(stub, "acme") == 1
    after = await export_one(stub, "acme")

    exports = await stub.ListVoucherExports(pb.ListVoucherExportsRequest(tenant="acme"))
    assert {e.external_id for e in exports.exports} >= {before, during, after}
    imports = await stub.ListImports(pb.ListImportsRequest(tenant="acme"))
    assert len(imports.imports) == 2
    moved_now = await connection_of(stub, "acme")
    assert moved_now.last_sie_import_at.seconds > 0
    # the old refresh token was revoked at Fortnox: nothing dangles
    assert sandbox.stats()["tokens"][str(company.id)]["revocations"] == 1


async def test_a_failed_move_leaves_the_old_connection_untouched(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle, database: Database
) -> None:
    company, other = sandbox.tenants[0], sandbox.tenants[1]
    old = await connect(stub, "acme", company)
    token = stored(database, "acme", "refresh_token")

    started = await start(stub, "acme", company, SERVICE)  # not an administrator
    await fails(complete(stub, log_in(started.authorization_url, user=company.ordinary_user)),
                grpc.StatusCode.FAILED_PRECONDITION, "SERVICE_ACCOUNT_NOT_ADMIN")
    started = await start(stub, "acme", company, SERVICE)  # another company
    await fails(complete(stub, log_in(started.authorization_url, user=other.administrator)),
                grpc.StatusCode.FAILED_PRECONDITION, "ORGANISATION_NUMBER_MISMATCH")

    assert (await connection_of(stub, "acme")) == old
    assert stored(database, "acme", "refresh_token") == token
    assert await import_books(stub, "acme") == 1
    await export_one(stub, "acme")
    assert (await connection_of(stub, "acme")).account_type == USER


async def test_a_code_from_a_login_for_another_tenant_is_refused(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    mine, theirs = sandbox.tenants[0], sandbox.tenants[1]
    for_a = await start(stub, "tenant-a", mine)
    for_b = await start(stub, "tenant-b", theirs)
    code_b = log_in(for_b.authorization_url, user=theirs.administrator)["code"]
    await fails(complete(stub, {"state": for_a.state, "code": code_b}),
                grpc.StatusCode.FAILED_PRECONDITION, "ORGANISATION_NUMBER_MISMATCH")
    await fails(stub.GetConnection(pb.GetConnectionRequest(tenant="tenant-a")),
                grpc.StatusCode.NOT_FOUND, "CONNECTION_NOT_FOUND")


async def test_connect_must_name_the_company_unless_told_not_to(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    failed = await fails(
        stub.Connect(pb.ConnectRequest(tenant="acme", redirect_uri=sandbox.redirect_uri)),
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert "expected_organisation_number" in failed.details()
    opted_out = await stub.Connect(pb.ConnectRequest(
        tenant="acme", redirect_uri=sandbox.redirect_uri, allow_any_company=True))
    back = log_in(opted_out.authorization_url, user=sandbox.tenants[2].administrator)
    assert (await complete(stub, back)).company_name == sandbox.tenants[2].name
