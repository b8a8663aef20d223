"""Fortnox's Topics WebSocket (``wss://ws.fortnox.se/topics-v1``): one session sends the
commands and reads the events of every watched company.

Commands are JSON text frames answered by a frame naming them (``{"response": <command>,
"result": "ok" | "error", ...}``); after ``subscribe-v1`` events arrive between answers. One
reader task sorts the frames: answers to the command waiting for them, events to a queue the
holder drains in batches. The client secret and the tokens appear in no log, span or error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from adapters.fortnox import tracing
from adapters.fortnox.tokens import TokenManager
from core.feed.model import FeedEvent
from core.feed.ports import AddedTenants, FeedDisconnected, FeedToken
from core.tasks import cancel_and_wait

_log = logging.getLogger(__name__)

#: How long a command waits for its answer before the session is given up.
ANSWER_TIMEOUT_S = 30.0
#: Fortnox's clients ping every 30 s; the socket is given up when a pong is this late.
PING_INTERVAL_S = 30.0
#: Events read but not yet recorded, at most (the socket then waits: back-pressure).
QUEUE_SIZE = 10_000

#: Where voucher events may carry the voucher's year, series and number (the top level or an
#: object inside; the names the event samples use, and Fortnox's REST names).
_YEAR_KEYS = ("year", "financialYear", "financialYearId", "Year")
_SERIES_KEYS = ("series", "voucherSeries", "VoucherSeries")
_NUMBER_KEYS = ("number", "voucherNumber", "VoucherNumber")


class FeedProtocolError(FeedDisconnected):
    """The feed answered a command in a way the session cannot go on from."""


def parse_event(frame: Mapping[str, Any]) -> FeedEvent | None:
    """An event frame as a ``FeedEvent``; ``None`` when it lacks what an event must carry."""
    try:
        topic, offset = frame["topic"], frame["offset"]
        tenant_id = int(frame["tenantId"])
        event_type = str(frame["type"])
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(topic, str) or not isinstance(offset, str):
        return None
    places = [frame, *(v for v in frame.values() if isinstance(v, dict))]
    return FeedEvent(
        topic=topic, offset=offset, event_type=event_type, fortnox_tenant_id=tenant_id,
        entity_id=str(frame.get("entityId", "")),
        occurred_at=_instant(frame.get("timestamp")),
        financial_year_id=_integer(places, _YEAR_KEYS),
        voucher_series=str(_first(places, _SERIES_KEYS) or ""),
        voucher_number=_integer(places, _NUMBER_KEYS),
    )


def _first(places: list[Mapping[str, Any]], keys: tuple[str, ...]) -> Any:
    for place in places:
        for key in keys:
            if place.get(key) not in (None, ""):
                return place[key]
    return None


def _integer(places: list[Mapping[str, Any]], keys: tuple[str, ...]) -> int:
    value = _first(places, keys)
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _instant(value: Any) -> datetime:
    """The event's time (ISO 8601 with an offset); now when it has none we can read."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(value)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.now(UTC)


class TopicsSession:
    """``core.feed.ports.FeedSession`` over one open WebSocket."""

    def __init__(self, socket: ClientConnection, client_secret: str,
                 tracer: trace.Tracer) -> None:
        self._socket = socket
        self._secret = client_secret
        self._tracer = tracer
        self._events: asyncio.Queue[FeedEvent | None] = asyncio.Queue()
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._command_lock = asyncio.Lock()
        self._closed = False
        self._reader = asyncio.create_task(self._read(), name="fortnox feed reader")
        #: Frames the session could not use (neither an answer nor an event).
        self.ignored = 0

    async def aclose(self) -> None:
        """Stops reading and closes the socket."""
        await cancel_and_wait(self._reader)
        with contextlib.suppress(Exception):
            await self._socket.close()

    async def _read(self) -> None:
        try:
            async for raw in self._socket:
                self._dispatch(raw)
        except (WebSocketException, OSError) as exc:
            _log.warning("fortnox feed socket failed", extra={"error": type(exc).__name__})
        finally:
            self._closed = True
            for waiting in self._waiting.values():
                if not waiting.done():
                    waiting.set_exception(FeedDisconnected("the feed closed"))
            self._events.put_nowait(None)

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            frame = None
        if not isinstance(frame, dict):
            self.ignored += 1
            return
        answered = frame.get("response")
        if isinstance(answered, str):
            waiting = self._waiting.get(answered)
            if waiting is not None and not waiting.done():
                waiting.set_result(frame)
            else:
                self.ignored += 1
                _log.warning("unexpected fortnox feed answer",
                             extra={"response": answered, "result": frame.get("result")})
            return
        event = parse_event(frame)
        if event is None:
            self.ignored += 1
            return
        if self._events.qsize() >= QUEUE_SIZE:
            # The holder records slower than events arrive: the session is dropped and resumes
            # from the stored offsets (nothing is lost; these events come again).
            _log.warning("fortnox feed events queue full; reconnecting")
            self._reader.cancel()
            return
        self._events.put_nowait(event)

    async def _command(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._tracer.start_as_current_span(f"fortnox.feed {name}") as span:
            async with self._command_lock:  # one command in flight at a time
                if self._closed:
                    raise FeedDisconnected("the feed closed")
                waiting = asyncio.get_running_loop().create_future()
                self._waiting[name] = waiting
                try:
                    await self._socket.send(json.dumps({"command": name, **body}))
                    async with asyncio.timeout(ANSWER_TIMEOUT_S):
                        answer: dict[str, Any] = await waiting
                except (WebSocketException, OSError) as exc:
                    raise FeedDisconnected(f"{name}: {type(exc).__name__}") from None
                except TimeoutError:
                    raise FeedDisconnected(f"{name}: no answer") from None
                finally:
                    self._waiting.pop(name, None)
            span.set_attribute("fortnox.feed.result", str(answer.get("result")))
            return answer

    async def add_tenants(self, access_tokens: Sequence[str]) -> AddedTenants:
        answer = await self._command("add-tenants-v1", {
            "clientSecret": self._secret, "accessTokens": list(access_tokens),
            "includeChildTenants": False})
        ids = answer.get("tenantIds") or {}
        invalid = answer.get("invalidTokens") or []
        if answer.get("result") != "ok" and not invalid and not ids:
            raise FeedProtocolError(f"add-tenants-v1 refused: {answer.get('message', '')}")
        return AddedTenants(
            tenant_ids={k: int(v) for k, v in ids.items() if isinstance(k, str)},
            invalid_tokens=frozenset(t for t in invalid if isinstance(t, str)))

    async def remove_tenants(self, tenant_ids: Sequence[int]) -> None:
        await self._command("remove-tenants-v1", {"tenants": list(tenant_ids)})

    async def list_tenants(self) -> frozenset[int]:
        answer = await self._command("list-tenants-v1", {})
        ids = answer.get("tenantIds") or []
        return frozenset(int(i) for i in ids if isinstance(i, int | str) and str(i).isdigit())

    async def add_topics(self, offsets: Mapping[str, str | None]) -> None:
        topics = [{"topic": t} if o is None else {"topic": t, "offset": o}
                  for t, o in offsets.items()]
        answer = await self._command("add-topics-v1", {"topics": topics})
        if answer.get("result") != "ok":
            # The good topics still took effect; an offset too old is a gap to report.
            _log.warning("fortnox feed refused topics", extra={
                "invalid_topics": json.dumps(answer.get("invalidTopics")),
                "detail": str(answer.get("message", ""))[:200]})

    async def subscribe(self) -> None:
        answer = await self._command("subscribe-v1", {})
        if answer.get("result") != "ok":
            raise FeedProtocolError(f"subscribe-v1 refused: {answer.get('message', '')}")

    async def receive(self, max_events: int) -> list[FeedEvent]:
        first = await self._events.get()
        batch: list[FeedEvent] = []
        item = first
        while True:
            if item is None:  # kept for the next call: the session stays closed
                self._events.put_nowait(None)
                if batch:  # what was read before the close is recorded first
                    return batch
                raise FeedDisconnected("the feed closed")
            batch.append(item)
            if len(batch) >= max_events or self._events.empty():
                return batch
            item = self._events.get_nowait()


class TopicsClient:
    """``core.feed.ports.FeedClient``: opens sessions to ``url`` with the client's secret."""

    def __init__(self, url: str, client_secret: str,
                 tracer_provider: trace.TracerProvider | None = None) -> None:
        self._url = url
        self._secret = client_secret
        self._tracer = tracing.get_tracer(tracer_provider)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[TopicsSession]:
        try:
            socket = await connect(self._url, ping_interval=PING_INTERVAL_S,
                                   ping_timeout=PING_INTERVAL_S, open_timeout=ANSWER_TIMEOUT_S,
                                   max_size=2**20)
        except (WebSocketException, OSError, TimeoutError) as exc:
            raise FeedDisconnected(f"cannot open the feed: {type(exc).__name__}") from None
        session = TopicsSession(socket, self._secret, self._tracer)
        try:
            yield session
        finally:
            await session.aclose()


class SharedFeedTokens:
    """``core.feed.ports.FeedTokens`` through the adapter's ``TokenManager``: the same claim
    in the database as every other Fortnox call, so a token is renewed once however many
    need it (a user's refresh token is never spent twice)."""

    def __init__(self, tokens: TokenManager, timeout_s: float) -> None:
        self._tokens = tokens
        self._timeout_s = timeout_s

    async def access(self, tenant: str) -> FeedToken:
        current = await self._tokens.access(tenant, time.monotonic() + self._timeout_s)
        return FeedToken(current.access_token, current.generation, current.access_expires_at)

    async def refused(self, tenant: str, generation: int) -> None:
        await self._tokens.rejected(tenant, generation, time.monotonic() + self._timeout_s)
