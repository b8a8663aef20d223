"""The feed's holder store, counted and traced: events received and recorded, take-overs, and
a span around each batch stored (the store itself is either backend's)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from opentelemetry import trace

from adapters import metrics
from core.feed.model import FeedEvent, WatchTarget
from core.feed.ports import HolderStore, Holding

TRACER_NAME = "fortnox_bridge.adapters.feed"


class MeteredHolderStore:
    """``HolderStore`` around another, recording what passes through it."""

    def __init__(self, store: HolderStore, provider: trace.TracerProvider | None = None) -> None:
        self._store = store
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=provider)

    async def take_holder(self, owner: str, lease_s: float) -> Holding | None:
        holding = await self._store.take_holder(owner, lease_s)
        if holding is not None and holding.took_over:
            metrics.feed_taken_over()
        return holding

    async def renew_holder(self, holding: Holding, lease_s: float) -> bool:
        return await self._store.renew_holder(holding, lease_s)

    async def release_holder(self, holding: Holding) -> None:
        await self._store.release_holder(holding)

    async def offsets(self) -> dict[str, str]:
        return await self._store.offsets()

    async def record(self, holding: Holding, events: Sequence[FeedEvent]) -> int:
        with self._tracer.start_as_current_span("fortnox_bridge.feed.record") as span:
            span.set_attribute("fortnox_bridge.feed.events", len(events))
            span.set_attribute("fortnox_bridge.feed.generation", holding.generation)
            recorded = await self._store.record(holding, events)
            span.set_attribute("fortnox_bridge.feed.recorded", recorded)
        topics = Counter(event.topic for event in events)
        # Per topic, the new changes are not known apart: a batch is nearly always one topic.
        left = recorded
        for topic, received in topics.most_common():
            share = min(received, left)
            metrics.feed_events(topic, received, share)
            left -= share
        return recorded

    async def watch_targets(self, now: datetime) -> list[WatchTarget]:
        return await self._store.watch_targets(now)

    async def end_expired_watches(self, now: datetime) -> list[str]:
        return await self._store.end_expired_watches(now)

    async def watch_added(self, tenant: str, feed_tenant_id: int,
                          token_expires_at: datetime | None, now: datetime) -> None:
        await self._store.watch_added(tenant, feed_tenant_id, token_expires_at, now)

    async def end_watch(self, tenant: str, reason: str, now: datetime) -> None:
        await self._store.end_watch(tenant, reason, now)

    async def note_watch(self, tenant: str, reason: str) -> None:
        await self._store.note_watch(tenant, reason)
