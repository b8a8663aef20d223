"""Service-account connections through gRPC against the sandbox: no refresh token, tokens from
the client-credentials grant, revocation, and the administrator-only consent."""

from __future__ import annotations

import asyncio
from datetime import date
from urllib.parse import parse_qs, urlsplit

import grpc

from sandbox.testing import SandboxHandle
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import SERVICE, Connection, complete, connect, log_in, start
from tests.harness.errors import fails
from tests.harness.vouchers import request, voucher
from tests.service.connections.flows import Database, export_one, import_books, stored


async def test_a_service_account_imports_and_exports_with_no_refresh_token(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle, database: Database
) -> None:
    company = sandbox.tenants[1]
    started = await start(stub, "acme", company, SERVICE)
    assert parse_qs(urlsplit(started.authorization_url).query)["account_type"] == ["service"]
    connection = await complete(stub, log_in(started.authorization_url, user=company.administrator))
    assert connection.account_type == SERVICE
    assert connection.state == Connection.STATE_CONNECTED
    assert connection.fortnox_tenant_id == str(company.id)
    assert connection.organisation_number == company.organisation_number
    assert not connection.HasField("refresh_token_expires_at")

    assert await import_books(stub, "acme") == 1
    await export_one(stub, "acme")
    sandbox.advance_clock(2 * 3600)  # the first access token has expired at Fortnox
    assert await import_books(stub, "acme") == 1
    await export_one(stub, "acme")

    # Fortnox's (and the sandbox's) answer to the consent's code carries a refresh token
    # (tests/sandbox/test_oauth.py); the service keeps none for a service account.
    assert stored(database, "acme", "refresh_token") is None
    assert stored(database, "acme", "account_type") == "service"
    assert stored(database, "acme", "fortnox_tenant_id") == str(company.id)
    hashes = [row[0] for row in database.rows(
        "SELECT token_sha256 FROM refresh_tokens WHERE tenant = ?", ("acme",))]
    assert all(not h for h in hashes), "a service account has no refresh token to log"
    tokens = sandbox.stats()["tokens"][str(company.id)]
    assert tokens["client_credentials"] == 1
    assert "refreshes" not in tokens
    got = (await stub.GetConnection(pb.GetConnectionRequest(tenant="acme"))).connection
    assert got.last_refreshed_at.seconds >= connection.connected_at.seconds
    assert got.last_export_at.seconds > 0
    assert got.last_sie_import_at.seconds > 0


async def test_fifty_concurrent_calls_ask_for_one_token(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    company = sandbox.tenants[0]
    await connect(stub, "acme", company, SERVICE)
    sandbox.advance_clock(2 * 3600)
    checks = [stub.ExportVouchers(request(
        "acme", [voucher(f"v{n}", date(2025, 12, 31), 100)],
        validate_only=True)) for n in range(50)]
    answers = await asyncio.gather(*checks)
    assert all(a.results[0].outcome == a.results[0].OUTCOME_VALID for a in answers)
    assert sandbox.stats()["tokens"][str(company.id)]["client_credentials"] == 1


async def test_a_revoked_consent_gives_revoked_with_a_reason(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    company = sandbox.tenants[0]
    await connect(stub, "acme", company, SERVICE)
    assert await import_books(stub, "acme") == 1
    sandbox.revoke_service_consent(company.id)
    failed = await fails(import_books(stub, "acme"), grpc.StatusCode.FAILED_PRECONDITION,
                         "CONNECTION_REVOKED")
    assert "revoked" in failed.details()
    connection = (await stub.GetConnection(pb.GetConnectionRequest(tenant="acme"))).connection
    assert connection.state == Connection.STATE_REVOKED
    assert "revoked" in connection.state_reason
    assert connection.state_changed_at.seconds > 0
    # connecting again gives a working connection
    await connect(stub, "acme", company, SERVICE)
    assert await import_books(stub, "acme") == 1


async def test_an_ordinary_users_login_is_refused_with_its_reason(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle
) -> None:
    company = sandbox.tenants[0]
    started = await start(stub, "acme", company, SERVICE)
    back = log_in(started.authorization_url, user=company.ordinary_user)
    assert "code" not in back
    failed = await fails(complete(stub, back), grpc.StatusCode.FAILED_PRECONDITION,
                         "SERVICE_ACCOUNT_NOT_ADMIN")
    assert "system administrator" in failed.details()
    await fails(stub.GetConnection(pb.GetConnectionRequest(tenant="acme")),
                grpc.StatusCode.NOT_FOUND, "CONNECTION_NOT_FOUND")
    # the same user may connect as a user
    started = await start(stub, "acme", company)
    user = await complete(stub, log_in(started.authorization_url, user=company.ordinary_user))
    assert user.state == Connection.STATE_CONNECTED
