"""The feed's holder store, counted and traced: events received and recorded, take-overs, and
a span around each batch stored (the store itself is either backend's; what is not counted
passes through to it untouched)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace

from adapters import metrics
from core.feed.model import FeedEvent
from core.feed.ports import HolderStore, Holding

TRACER_NAME = "fortnox_bridge.adapters.feed"


class MeteredHolderStore:
    """``HolderStore`` around another, recording what passes through it."""

    def __init__(self, store: HolderStore, provider: trace.TracerProvider | None = None) -> None:
        self._store = store
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=provider)

    def __getattr__(self, name: str) -> Any:
        """Every method not counted here is the inner store's, as it is."""
        if name.startswith("_"):  # not the inner's private parts (nor itself, before set)
            raise AttributeError(name)
        return getattr(self._store, name)

    async def take_holder(self, owner: str, lease_s: float) -> Holding | None:
        holding = await self._store.take_holder(owner, lease_s)
        if holding is not None and holding.took_over:
            metrics.feed_taken_over()
        return holding

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
