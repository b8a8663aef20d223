"""The feed as Fortnox's can misbehave: a connection dropped mid-stream, events sent twice, a
tenant's token lapsing mid-subscription. Every change still reaches the caller exactly once,
as the sandbox's own event log has it."""

from __future__ import annotations

from sandbox.testing import SandboxHandle
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import connect
from tests.service.feed.watching import Follower, watch


async def test_drops_and_duplicates_lose_nothing_and_repeat_nothing(
        stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    await connect(stub, "acme", company)
    await watch(stub, "acme")
    follower = Follower(stub, ["acme"])
    try:
        sandbox.add_fault("feed_duplicate", count=5)
        sandbox.add_fault("feed_drop", after=8, count=1)
        sandbox.feed_burst(30, [company.id])
        changes = await follower.wait_for(30)
    finally:
        await follower.close()
    # A duplicate would take the place of a change in this list, a lost one leave a hole.
    logged = sandbox.feed_events("vouchers", company.id)
    assert [c.voucher_number for c in changes] == [e["number"] for e in logged]
    assert len(logged) == 30
    assert len(sandbox.feed_connections()) >= 2  # the holder connected again after the drop


async def test_a_token_that_lapses_mid_subscription_is_added_again_and_nothing_is_skipped(
        stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    await connect(stub, "acme", company)
    await watch(stub, "acme")
    follower = Follower(stub, ["acme"])
    try:
        sandbox.feed_burst(1, [company.id])
        await follower.wait_for(1)
        sandbox.add_fault("feed_token_expiry", tenant=company.id, count=1)
        sandbox.feed_burst(4, [company.id])  # the first is not sent: the tenant stops
        changes = await follower.wait_for(5)
    finally:
        await follower.close()
    assert [c.voucher_number for c in changes] == [
        e["number"] for e in sandbox.feed_events("vouchers", company.id)]
    assert sandbox.faults() == []  # the lapse did happen (the rule fired and is spent)
