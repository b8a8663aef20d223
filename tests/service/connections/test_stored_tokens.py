"""Stored tokens that cannot be used: a reason of their own, on each database."""

from __future__ import annotations

import grpc

from sandbox.testing import SandboxHandle
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import connect
from tests.harness.errors import error_info, fails
from tests.service.connections.flows import Database, import_books


async def test_tokens_that_do_not_decrypt_for_their_row_have_a_reason_of_their_own(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle, database: Database
) -> None:
    await connect(stub, "acme")
    await connect(stub, "other", sandbox.tenants[1])
    # acme's row now holds other's access token: sealed for other's row, it must not decrypt.
    (blob,) = database.rows("SELECT access_token FROM connections WHERE tenant = ?", ("other",))
    database.rows("UPDATE connections SET access_token = ? WHERE tenant = ?", (blob[0], "acme"))
    caught = await fails(import_books(stub, "acme"), grpc.StatusCode.FAILED_PRECONDITION,
                         "STORED_TOKEN_UNREADABLE")
    assert error_info(caught).metadata["column"] == "access_token"
    assert "decrypted" in (caught.details() or "")
    assert await import_books(stub, "other") == 1
