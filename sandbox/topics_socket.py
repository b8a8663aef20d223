"""``/topics-v1``: Fortnox's Topics WebSocket. One task reads commands and answers them; after
``subscribe-v1`` another sends the events of the added topics for the added tenants, woken by
the topic log, applying the ``feed_*`` faults of :mod:`sandbox.faults`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from sandbox.api_common import ConnectionDropped
from sandbox.faults import FEED_PATH
from sandbox.state import SandboxState
from sandbox.topics_commands import CommandHandler, FeedConnection
from sandbox.topics_log import Event

#: Events read from the log per topic and round.
BATCH = 500


class _Dropped(Exception):
    """The connection is to be dropped (fault, on demand, or a stalled consumer)."""


class FeedSession:
    """One WebSocket connection of the feed."""

    def __init__(self, state: SandboxState, websocket: WebSocket) -> None:
        self.state, self.websocket = state, websocket
        self.conn: FeedConnection = state.topic_hub.open()
        self.commands = CommandHandler(state, self.conn)
        self.wake = asyncio.Event()
        self.stopped = asyncio.Event()
        self.reason = ""
        self.failure: BaseException | None = None
        self.send_lock = asyncio.Lock()
        self.sender: asyncio.Task[None] | None = None

    async def _send(self, payload: dict[str, Any], stall_ms: int | None = None) -> None:
        text = json.dumps(payload, ensure_ascii=False)
        async with self.send_lock:
            if stall_ms is None:
                await self.websocket.send_text(text)
                return
            try:
                async with asyncio.timeout(stall_ms / 1000):
                    await self.websocket.send_text(text)
            except TimeoutError as exc:
                raise _Dropped("slow consumer") from exc

    def _finish(self, reason: str, failure: BaseException | None = None) -> None:
        """End the session (the first reason counts)."""
        if not self.stopped.is_set():
            self.reason, self.failure = reason, failure
            self.stopped.set()

    async def _guard(self, work: Any) -> None:
        """Run the reader or the sender; whichever ends first ends the session."""
        try:
            await work
            self._finish("client closed")
        except _Dropped as exc:
            self._finish(str(exc))
        except (WebSocketDisconnect, OSError):
            self._finish("client closed")
        except Exception as exc:  # a defect: uvicorn logs it as the session's failure
            self._finish("error", exc)

    async def run(self) -> None:
        """Serve the connection until the client leaves or it is dropped."""
        await self.websocket.accept()
        loop = asyncio.get_running_loop()
        self.state.topic_hub.drop_requests[self.conn.id] = (
            lambda: loop.call_soon_threadsafe(self._finish, "dropped on demand"))
        self.state.topic_log.add_waker(self.wake)
        reader = asyncio.create_task(self._guard(self._read()))
        try:
            await self.stopped.wait()
        finally:
            for task in (reader, self.sender):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.wait({task})  # not suppress(...): the caller's cancel is kept
            self.state.topic_log.remove_waker(self.wake)
            self.state.topic_hub.drop_requests.pop(self.conn.id, None)
            self.conn.closed = self.reason or "client closed"
        if self.failure is not None:
            raise self.failure
        if self.reason != "client closed":
            raise ConnectionDropped(f"sandbox feed: connection dropped ({self.reason})")

    async def _read(self) -> None:
        """Answer commands until the client disconnects."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                answer = {"response": "unknown", "result": "error",
                          "message": "commands are JSON text frames"}
            else:
                answer = self.commands.handle(text)
            await self._send(answer)
            if answer.get("response") == "subscribe-v1" and self.sender is None:
                self.sender = asyncio.create_task(self._guard(self._stream()))
            self.wake.set()  # new tenants or topics may have something to send

    async def _stream(self) -> None:
        """Send every new event of the added topics for the live tenants."""
        while True:
            self.wake.clear()
            progressed = False
            for topic in list(self.conn.cursors):
                position = self.conn.cursors[topic]
                batch = self.state.topic_log.read(topic, position, BATCH)
                for event in batch:
                    if self.conn.cursors.get(topic) != position:
                        break  # the topic was added again, from another offset
                    await self._deliver(event)
                    if self.conn.cursors.get(topic) != position:
                        break
                    position = self.conn.cursors[topic] = event.seq
                progressed = progressed or bool(batch)
            if not progressed:
                await self.wake.wait()

    async def _deliver(self, event: Event) -> None:
        """Send one event if its tenant is live here, with whatever faults fire for it."""
        if not self.commands.live(event.tenant_id):
            return
        fired = {f.kind: f for f in self.state.faults.take("WS", FEED_PATH, event.tenant_id)}
        if "feed_drop" in fired:
            raise _Dropped("feed_drop fault")
        if "feed_token_expiry" in fired:
            self.commands.stop(event.tenant_id, "expired")
            return
        slow = fired.get("feed_slow_consumer")
        payload = event.json()
        self.conn.sending = True
        try:
            for _ in range(2 if "feed_duplicate" in fired else 1):
                await self._send(payload, slow.stall_ms if slow else None)
                self.conn.sent += 1
        finally:
            self.conn.sending = False


def topics_endpoint(state: SandboxState) -> Any:
    """The ASGI WebSocket endpoint bound to ``state``."""

    async def endpoint(websocket: WebSocket) -> None:
        await FeedSession(state, websocket).run()

    return endpoint
