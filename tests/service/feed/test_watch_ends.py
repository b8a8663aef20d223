"""A watched tenant the feed can no longer follow stops being watched with the reason, and the
other watched tenants keep flowing: a service account whose consent the customer revoked, and
a user connection whose token the feed refuses and whose refresh token is dead."""

from __future__ import annotations

from sandbox.testing import SandboxHandle
from spiris.skattbokslut.fortnox.v1 import book_changes_pb2 as bc
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import SERVICE, connect
from tests.service.feed.test_book_changes import customer_voucher
from tests.service.feed.watching import Follower, until, watch

ENDED = bc.Watch.STATE_ENDED


async def test_a_revoked_service_consent_ends_its_watch_and_others_flow_on(
        stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle) -> None:
    kept, revoked = sandbox.tenants[0], sandbox.tenants[1]
    await connect(stub, "acme", kept)
    await connect(stub, "svc", revoked, SERVICE)
    await watch(stub, "acme")
    await watch(stub, "svc")
    follower = Follower(stub, ["acme", "svc"])
    try:
        sandbox.revoke_service_consent(revoked.id)
        day = revoked.financial_years[-1]["from"]
        sandbox.book_voucher(revoked.id, customer_voucher(day, 10, "Efter återkallelsen"))
        ended = await until(stub, "svc", lambda w: w.state == ENDED)
        assert "revoked" in ended.reason and "consent" in ended.reason
        sandbox.book_voucher(kept.id, customer_voucher(kept.financial_years[-1]["from"], 20,
                                                       "Fortfarande bevakad"))
        (change,) = await follower.wait_for(1)
    finally:
        await follower.close()
    assert change.tenant == "acme" and change.kind == bc.BookChange.KIND_VOUCHER_CREATED
    still = await until(stub, "acme", lambda w: True)
    assert still.state == bc.Watch.STATE_WATCHING and still.reason == ""


async def test_a_refused_token_with_a_dead_refresh_token_ends_its_watch(
        stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle) -> None:
    kept, dead = sandbox.tenants[0], sandbox.tenants[1]
    await connect(stub, "acme", kept)
    await connect(stub, "beta", dead)
    await watch(stub, "acme")
    await watch(stub, "beta")
    follower = Follower(stub, ["acme"])
    try:
        # One change first: the deployment then has an offset to read again from, for what
        # Fortnox skips while a tenant's token has lapsed (a feed never used has none).
        sandbox.book_voucher(kept.id, customer_voucher(kept.financial_years[-1]["to"], 5, "Före"))
        await follower.wait_for(1)
        sandbox.invalidate_refresh_tokens(dead.id)
        # Both access tokens expire at Fortnox (the sandbox's clock), though not by ours: the
        # feed stops both tenants; acme is added again with a fresh token, beta cannot be.
        sandbox.advance_clock(2 * 3600)
        for company in (kept, dead):
            sandbox.book_voucher(company.id, customer_voucher(
                company.financial_years[-1]["to"], 30, "Under tiden"))
        ended = await until(stub, "beta", lambda w: w.state == ENDED)
        assert "refresh token" in ended.reason
        change = (await follower.wait_for(2))[1]
    finally:
        await follower.close()
    assert (change.tenant, change.kind) == ("acme", bc.BookChange.KIND_VOUCHER_CREATED)
    acme = await until(stub, "acme", lambda w: True)
    assert acme.state == bc.Watch.STATE_WATCHING
