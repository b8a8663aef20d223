"""The Topics WebSocket client against the sandbox's feed: commands and their answers, events
parsed as Fortnox sends them, refused tokens, a dropped socket, and no secret in a span."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.fortnox.feed import TopicsClient, parse_event
from core.feed.ports import FeedDisconnected
from sandbox.testing import SandboxHandle


async def test_a_session_adds_tenants_subscribes_and_reads_events(
        sandbox: SandboxHandle, provider: TracerProvider, spans: InMemorySpanExporter) -> None:
    company = sandbox.tenants[0]
    token = sandbox.tokens(company.id)["access_token"]
    client = TopicsClient(sandbox.topics_url, sandbox.client_secret, provider)
    async with client.connect() as session:
        added = await session.add_tenants([f"Bearer {token}", "Bearer not-a-token"])
        assert dict(added.tenant_ids) == {f"Bearer {token}": company.id}
        assert added.invalid_tokens == {"Bearer not-a-token"}
        assert await session.list_tenants() == {company.id}
        await session.add_topics({"vouchers": None, "financial-years": None})
        await session.subscribe()
        year = company.financial_years[-1]
        sandbox.feed_burst(3, [company.id])
        events = []
        while len(events) < 3:
            events += await asyncio.wait_for(session.receive(10), 30)
        logged = sandbox.feed_events("vouchers", company.id)
        assert [(e.offset, e.voucher_number) for e in events] == [
            (e["offset"], e["number"]) for e in logged]
        first = events[0]
        assert (first.topic, first.event_type, first.fortnox_tenant_id) == (
            "vouchers", "voucher-created-v1", company.id)
        assert (first.financial_year_id, first.voucher_series) == (year["id"], "A")
        assert first.occurred_at.tzinfo is not None
        await session.remove_tenants([company.id])
        assert await session.list_tenants() == frozenset()
    recorded = " ".join(str(s.attributes) + s.name for s in spans.get_finished_spans())
    assert "fortnox.feed add-tenants-v1" in recorded
    assert token not in recorded and sandbox.client_secret not in recorded


async def test_a_dropped_socket_ends_the_session(sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    token = sandbox.tokens(company.id)["access_token"]
    async with TopicsClient(sandbox.topics_url, sandbox.client_secret).connect() as session:
        await session.add_tenants([f"Bearer {token}"])
        await session.add_topics({"vouchers": None})
        await session.subscribe()
        assert sandbox.drop_feed() == 1
        with pytest.raises(FeedDisconnected):
            await asyncio.wait_for(session.receive(10), 30)
        with pytest.raises(FeedDisconnected):
            await session.list_tenants()


async def test_a_command_cancelled_as_its_answer_comes_is_cancelled(
        sandbox: SandboxHandle) -> None:
    """The holder is stopped by cancelling it: a command that took its answer instead would
    keep its loop, and the stopping service, going for ever."""
    async with TopicsClient(sandbox.topics_url, sandbox.client_secret).connect() as session:
        listing = asyncio.create_task(session.list_tenants())
        while "list-tenants-v1" not in session._waiting:  # noqa: ASYNC110 (nothing signals a sent command)
            await asyncio.sleep(0)
        session._waiting["list-tenants-v1"].set_result({"result": "ok", "tenantIds": []})
        listing.cancel()  # in the same turn of the loop as the answer
        with pytest.raises(asyncio.CancelledError):
            await listing


async def test_no_feed_to_reach_is_a_disconnection() -> None:
    with pytest.raises(FeedDisconnected):
        async with TopicsClient("ws://127.0.0.1:9/topics-v1", "secret").connect():
            pass


def test_events_are_read_where_fortnox_may_put_the_voucher() -> None:
    nested = parse_event({"topic": "vouchers", "offset": "x", "type": "voucher-updated-v1",
                          "tenantId": "29302", "entityId": 7,
                          "timestamp": "2017-12-28T14:59:16.500+01:00",
                          "voucher": {"Year": 4, "VoucherSeries": "B", "VoucherNumber": "7"}})
    assert nested is not None
    assert (nested.fortnox_tenant_id, nested.entity_id, nested.financial_year_id,
            nested.voucher_series, nested.voucher_number) == (29302, "7", 4, "B", 7)
    assert nested.occurred_at.utcoffset() is not None
    assert parse_event({"topic": "vouchers", "type": "x", "tenantId": 1}) is None  # no offset
    assert parse_event({"topic": "vouchers", "offset": 5, "type": "x", "tenantId": 1}) is None
