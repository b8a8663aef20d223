"""Fortnox's change feed as the sandbox keeps it: one log per topic, string offsets ordered
within a topic, two weeks of retention on the sandbox clock, and wake-ups for the WebSocket
connections that stream it (:mod:`sandbox.topics_socket`).

Offsets are opaque to clients, as Fortnox's are: a letter and eight base-36 digits of the
topic's sequence (``"k00000001"``, ..., ``"k0000000a"``), so they sort as strings and never look
like plain numbers. Sequences keep growing across ``/_sandbox/reset`` (only the events go), so
an offset from before a reset reads as one the topic no longer has.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.clock import SandboxClock

#: Fortnox's topics (2025), plus ``accounts`` (whose real name nobody documents).
TOPICS = (
    "invoices", "customers", "orders", "offers", "articles", "currencies", "termsofdeliveries",
    "waysofdeliveries", "termsofpayments", "bureau-activities", "bureau-assignments",
    "cost-centers", "financial-years", "messages", "projects", "suppliers", "supplier-invoices",
    "vouchers", "warehouse-stockbalances", "accounts",
)
#: How long an event is kept (Fortnox: "about two weeks").
RETENTION_SECONDS = 14 * 86_400
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_OFFSET_PREFIX = "k"
_OFFSET_DIGITS = 8
_STOCKHOLM = ZoneInfo("Europe/Stockholm")


def encode_offset(seq: int) -> str:
    """The opaque string of a topic's ``seq``-th event."""
    digits = ""
    while seq:
        seq, rest = divmod(seq, 36)
        digits = _DIGITS[rest] + digits
    return _OFFSET_PREFIX + digits.rjust(_OFFSET_DIGITS, "0")


def decode_offset(text: object) -> int | None:
    """The sequence an offset string stands for; None when it is not one of ours."""
    if (not isinstance(text, str) or len(text) != _OFFSET_DIGITS + 1
            or not text.startswith(_OFFSET_PREFIX)
            or any(c not in _DIGITS for c in text[1:])):
        return None
    return int(text[1:], 36)


def fortnox_time(when: datetime) -> str:
    """``2017-12-28T14:59:16.500+01:00``: Swedish local time with milliseconds."""
    return when.astimezone(_STOCKHOLM).isoformat(timespec="milliseconds")


@dataclass(slots=True)
class Event:
    """One event of a topic; ``extra`` holds type-specific fields (a voucher's year and
    series), written after the common ones."""

    topic: str
    seq: int
    type: str
    tenant_id: int
    entity_id: str
    at: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def offset(self) -> str:
        """The event's offset string."""
        return encode_offset(self.seq)

    def json(self) -> dict[str, Any]:
        """The event as the feed sends it."""
        return {"topic": self.topic, "offset": self.offset, "type": self.type,
                "tenantId": self.tenant_id, "entityId": self.entity_id,
                "timestamp": fortnox_time(self.at), **self.extra}


@dataclass(frozen=True, slots=True)
class StartPoint:
    """Where a topic's stream starts for one connection: after ``after_seq``. ``gap`` says the
    requested offset was out of range (older than the retention, or never given out), so the
    stream starts at the earliest kept event and whatever lay between is lost."""

    after_seq: int
    requested: str | None
    gap: bool


@dataclass(slots=True)
class _Waker:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event


class TopicLog:
    """Every topic's kept events; thread-safe. Emitting wakes the connections' senders."""

    def __init__(self, clock: SandboxClock, retention_seconds: int = RETENTION_SECONDS) -> None:
        self.clock = clock
        self.retention = timedelta(seconds=retention_seconds)
        self._lock = threading.Lock()
        self._events: dict[str, list[Event]] = {t: [] for t in TOPICS}
        self._last_seq: dict[str, int] = dict.fromkeys(TOPICS, 0)
        self._wakers: list[_Waker] = []

    # -- writing -----------------------------------------------------------------------
    def emit(self, topic: str, type_: str, tenant_id: int, entity_id: str,
             **extra: Any) -> Event:
        """Append one event (``KeyError`` for an unknown topic) and wake the senders."""
        return self.emit_many([(topic, type_, tenant_id, entity_id, extra)])[0]

    def emit_many(self, specs: list[tuple[str, str, int, str, dict[str, Any]]]) -> list[Event]:
        """Append several events at once: (topic, type, tenant id, entity id, extra)."""
        now = self.clock.now()
        made: list[Event] = []
        with self._lock:
            for topic, type_, tenant_id, entity_id, extra in specs:
                if topic not in self._events:
                    raise KeyError(topic)
                self._last_seq[topic] += 1
                event = Event(topic, self._last_seq[topic], type_, tenant_id, entity_id, now,
                              dict(extra))
                self._events[topic].append(event)
                made.append(event)
            wakers = list(self._wakers)
        for waker in wakers:
            if not waker.loop.is_closed():
                waker.loop.call_soon_threadsafe(waker.event.set)
        return made

    def voucher(self, change: str, tenant_id: int, year_id: int, series: str,
                number: int) -> Event:
        """``voucher-<change>-v1`` (created, updated, deleted): the entity id is the voucher
        number; the financial-year id and the series sit at the top level as ``year`` and
        ``series`` (with ``number`` again, as a number)."""
        return self.emit("vouchers", f"voucher-{change}-v1", tenant_id, str(number),
                         year=year_id, series=series, number=number)

    def clear(self) -> None:
        """Forget every event (sequences go on, so old offsets stay out of range)."""
        with self._lock:
            for kept in self._events.values():
                kept.clear()

    # -- reading -----------------------------------------------------------------------
    def _purge(self, topic: str) -> list[Event]:
        """Drop events older than the retention; the topic's kept list (lock held)."""
        kept = self._events[topic]
        cutoff = self.clock.now() - self.retention
        stale = 0
        while stale < len(kept) and kept[stale].at < cutoff:
            stale += 1
        if stale:
            del kept[:stale]
        return kept

    def read(self, topic: str, after_seq: int, limit: int = 500) -> list[Event]:
        """Up to ``limit`` kept events of ``topic`` with a sequence above ``after_seq``."""
        with self._lock:
            kept = self._purge(topic)
            if not kept:
                return []
            start = max(0, after_seq + 1 - kept[0].seq)
            return kept[start:start + limit]

    def bounds(self, topic: str) -> tuple[int, int, int]:
        """(earliest kept sequence or 0, last sequence given out, events kept)."""
        with self._lock:
            kept = self._purge(topic)
            return (kept[0].seq if kept else 0, self._last_seq[topic], len(kept))

    def start_point(self, topic: str, offset: str | None) -> StartPoint | None:
        """Where a stream of ``topic`` starts: after ``offset`` (the last event the client
        saw), or at the next new event without one; None for a malformed offset."""
        earliest, last, _ = self.bounds(topic)
        if offset is None:
            return StartPoint(last, None, gap=False)
        seq = decode_offset(offset)
        if seq is None:
            return None
        first_kept = earliest or last + 1
        if seq > last or seq + 1 < first_kept:
            return StartPoint(first_kept - 1, offset, gap=True)
        return StartPoint(seq, offset, gap=False)

    def events(self, topic: str | None = None, tenant_id: int | None = None,
               after_seq: int = 0, limit: int = 100_000) -> list[Event]:
        """Kept events, by topic (all topics in their order when None) and tenant."""
        chosen = [topic] if topic is not None else list(TOPICS)
        found: list[Event] = []
        for name in chosen:
            for event in self.read(name, after_seq, limit=limit):
                if tenant_id is None or event.tenant_id == tenant_id:
                    found.append(event)
        return found[:limit]

    # -- wake-ups ----------------------------------------------------------------------
    def add_waker(self, event: asyncio.Event) -> None:
        """Set ``event`` (on the running loop) whenever something is emitted."""
        with self._lock:
            self._wakers.append(_Waker(asyncio.get_running_loop(), event))

    def remove_waker(self, event: asyncio.Event) -> None:
        """Stop waking ``event``."""
        with self._lock:
            self._wakers = [w for w in self._wakers if w.event is not event]
