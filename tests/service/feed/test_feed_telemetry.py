"""What the feed tells operators: events received (recorded or duplicate), the lag to a
caller, take-overs, and the spans of its commands and stored batches, never with a token."""

from __future__ import annotations

import grpc

from sandbox.testing import SandboxHandle
from server.config import Settings
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import connect
from tests.harness.metrics import points, recording_metrics, serving_metered, total
from tests.service.feed.watching import Follower, watch


async def test_events_lag_and_spans_are_recorded(settings: Settings,
                                                 sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    with recording_metrics() as (meters, reader):
        async with (serving_metered(settings, meters) as (running, spans),
                    grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel):
            stub = pb_grpc.FortnoxServiceStub(channel)
            await connect(stub, "acme", company)
            await watch(stub, "acme")
            follower = Follower(stub, ["acme"])
            try:
                sandbox.add_fault("feed_duplicate", count=2)
                sandbox.feed_burst(4, [company.id])
                await follower.wait_for(4)
            finally:
                await follower.close()
            found = points(reader)
            names = [s.name for s in spans.get_finished_spans()]
            recorded = " ".join(f"{s.name} {s.attributes}" for s in spans.get_finished_spans())
    events = "fortnox_bridge.feed.events"
    assert total(found, events, {"fortnox_bridge.feed.outcome": "recorded",
                                 "fortnox_bridge.feed.topic": "vouchers"}) == 4
    assert total(found, events, {"fortnox_bridge.feed.outcome": "duplicate"}) == 2
    assert total(found, "fortnox_bridge.feed.lag") == 4  # one recording per delivery
    assert total(found, "fortnox_bridge.feed.holder_takeovers") == 0  # the first holder
    assert "fortnox.feed add-tenants-v1" in names and "fortnox.feed subscribe-v1" in names
    assert "fortnox_bridge.feed.record" in names
    assert settings.fortnox_client_secret not in recorded and "Bearer" not in recorded
