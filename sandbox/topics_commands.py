"""The commands of Fortnox's Topics WebSocket and the state of one connection, without the
socket (:mod:`sandbox.topics_socket` carries the frames).

Answers, as zenta-ab/fortnox.NET shows them (shapes in ``sandbox/TOPICS_NOTES.md``):
``{"response": <command>, "result": "ok" | "error", ...}``. Where part of a command is bad
(some tokens, some topics) the good part still takes effect and the answer is ``"error"`` with
the bad part listed; a frame that is not a command is answered ``"error"`` with a ``message``.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.tokens import GrantError
from sandbox.topics_log import TOPICS, StartPoint, encode_offset

if TYPE_CHECKING:
    from sandbox.state import SandboxState

COMMANDS = ("add-tenants-v1", "remove-tenants-v1", "list-tenants-v1", "add-topics-v1",
            "subscribe-v1")


@dataclass(slots=True)
class TenantGrant:
    """A tenant added to a connection with an access token (kept to re-check it)."""

    token: str
    expires_at: int


@dataclass
class FeedConnection:
    """What one WebSocket connection has asked for, and what happened to it."""

    id: int
    tenants: dict[int, TenantGrant] = field(default_factory=dict)
    #: tenant id -> why its events stopped (``expired``, ``revoked``); cleared on a re-add.
    stopped: dict[int, str] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)
    starts: dict[str, StartPoint] = field(default_factory=dict)
    subscribed: bool = False
    sent: int = 0
    sending: bool = False  # an event is being sent (stays true while a consumer stalls it)
    closed: str = ""  # why it closed ("" while open)

    def describe(self) -> dict[str, Any]:
        """The connection as ``GET /_sandbox/topics/connections`` shows it."""
        return {
            "id": self.id, "subscribed": self.subscribed, "sent": self.sent,
            "sending": self.sending,
            "closed": self.closed or None,
            "tenants": sorted(self.tenants),
            "stopped_tenants": {str(t): why for t, why in sorted(self.stopped.items())},
            "topics": {
                topic: {"requested_offset": start.requested,
                        "started_after": encode_offset(start.after_seq) if start.after_seq
                        else None,
                        "gap": start.gap,
                        "position": encode_offset(self.cursors[topic])
                        if self.cursors.get(topic) else None}
                for topic, start in self.starts.items()
            },
        }


class FeedHub:
    """The open (and recently closed) connections, for the control routes; thread-safe."""

    KEEP_CLOSED = 50

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 1
        self.connections: dict[int, FeedConnection] = {}
        self.drop_requests: dict[int, Callable[[], object]] = {}  # id -> what drops it

    def open(self) -> FeedConnection:
        """Register a new connection."""
        with self._lock:
            conn = FeedConnection(self._next)
            self._next += 1
            self.connections[conn.id] = conn
            closed = [c.id for c in self.connections.values() if c.closed]
            for old in closed[:-self.KEEP_CLOSED]:
                del self.connections[old]
            return conn

    def listing(self) -> list[dict[str, Any]]:
        """Every kept connection, described."""
        with self._lock:
            return [c.describe() for c in self.connections.values()]

    def drop(self, connection_id: int | None = None) -> int:
        """Drop one open connection (or every one) now; how many were asked to drop."""
        with self._lock:
            chosen = [f for i, f in self.drop_requests.items()
                      if connection_id is None or i == connection_id]
        for drop in chosen:
            drop()
        return len(chosen)

    def clear(self) -> None:
        """Forget closed connections (open ones stay: their sockets are still there)."""
        with self._lock:
            self.connections = {i: c for i, c in self.connections.items() if not c.closed}


def _error(command: str, message: str, **more: Any) -> dict[str, Any]:
    return {"response": command, "result": "error", "message": message, **more}


class CommandHandler:
    """Applies one connection's commands against the sandbox's tokens and topic log."""

    def __init__(self, state: SandboxState, conn: FeedConnection) -> None:
        self.state, self.conn = state, conn

    def handle(self, text: str) -> dict[str, Any]:
        """The answer to one text frame (never raises for what a client sends)."""
        try:
            message = json.loads(text)
        except ValueError:
            return _error("unknown", "the frame is not JSON")
        if not isinstance(message, dict):
            return _error("unknown", "a command is a JSON object")
        command = message.get("command")
        if command not in COMMANDS:
            return _error(command if isinstance(command, str) else "unknown",
                          f"unknown command; one of {', '.join(COMMANDS)}")
        handler = {
            "add-tenants-v1": self._add_tenants, "remove-tenants-v1": self._remove_tenants,
            "list-tenants-v1": self._list_tenants, "add-topics-v1": self._add_topics,
            "subscribe-v1": self._subscribe,
        }[command]
        return handler(message)

    # -- tenants -----------------------------------------------------------------------
    def _add_tenants(self, message: dict[str, Any]) -> dict[str, Any]:
        command = "add-tenants-v1"
        secret, tokens = message.get("clientSecret"), message.get("accessTokens")
        children = message.get("includeChildTenants", False)
        if not isinstance(secret, str) or not hmac.compare_digest(
                secret.encode(), self.state.options.client_secret.encode()):
            return _error(command, "clientSecret is missing or wrong")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            return _error(command, "accessTokens must be a list of strings")
        if not isinstance(children, bool):
            return _error(command, "includeChildTenants must be true or false")
        tenant_ids: dict[str, int] = {}
        invalid: list[str] = []
        for presented in tokens:
            scheme, _, jwt = presented.partition(" ")
            try:
                if scheme != "Bearer" or not jwt.strip():
                    raise GrantError("invalid", "not a bearer token")
                claims = self.state.tokens.verify_access(jwt.strip())
                if claims.client_id != self.state.options.client_id:
                    raise GrantError("invalid", "another client's token")
            except (GrantError, ValueError, KeyError):
                invalid.append(presented)
                continue
            self.conn.tenants[claims.tenant_id] = TenantGrant(jwt.strip(), claims.expires_at)
            self.conn.stopped.pop(claims.tenant_id, None)
            tenant_ids[presented] = claims.tenant_id
        answer: dict[str, Any] = {"response": command, "result": "error" if invalid else "ok",
                                  "tenantIds": tenant_ids}
        if invalid:
            answer["invalidTokens"] = invalid
        return answer

    def _remove_tenants(self, message: dict[str, Any]) -> dict[str, Any]:
        command = "remove-tenants-v1"
        tenants = message.get("tenants")
        if not isinstance(tenants, list) or not all(
                isinstance(t, int) and not isinstance(t, bool) for t in tenants):
            return _error(command, "tenants must be a list of tenant ids (numbers)")
        for tenant in tenants:
            self.conn.tenants.pop(tenant, None)
            self.conn.stopped.pop(tenant, None)
        return {"response": command, "result": "ok"}

    def _list_tenants(self, message: dict[str, Any]) -> dict[str, Any]:
        self.live_tenants()
        return {"response": "list-tenants-v1", "result": "ok",
                "tenantIds": sorted(self.conn.tenants)}

    def live(self, tenant_id: int) -> bool:
        """Whether events of ``tenant_id`` go out on this connection now: it was added and its
        token has neither expired (sandbox clock) nor been revoked; a tenant whose token has
        stops here until it is added again."""
        grant = self.conn.tenants.get(tenant_id)
        if grant is None:
            return False
        reason = ""
        if grant.expires_at <= self.state.clock.timestamp():
            reason = "expired"
        else:
            try:
                self.state.tokens.verify_access(grant.token)
            except GrantError as exc:
                reason = "expired" if exc.error == "expired" else "revoked"
        if reason:
            self.stop(tenant_id, reason)
            return False
        return True

    def stop(self, tenant_id: int, reason: str) -> None:
        """End the feed of one tenant on this connection."""
        self.conn.tenants.pop(tenant_id, None)
        self.conn.stopped[tenant_id] = reason

    def live_tenants(self) -> list[int]:
        """The tenants whose events go out now (stopping those whose tokens lapsed)."""
        return [t for t in list(self.conn.tenants) if self.live(t)]

    # -- topics ------------------------------------------------------------------------
    def _add_topics(self, message: dict[str, Any]) -> dict[str, Any]:
        command = "add-topics-v1"
        topics = message.get("topics")
        if not isinstance(topics, list):
            return _error(command, 'topics must be a list of {"topic": ..., "offset": ...}')
        invalid: list[Any] = []
        for item in topics:
            if not isinstance(item, dict):
                invalid.append(item)
                continue
            name, offset = item.get("topic"), item.get("offset")
            if not isinstance(name, str) or name not in TOPICS or not (
                    offset is None or isinstance(offset, str)):
                invalid.append(name if isinstance(name, str) else item)
                continue
            start = self.state.topic_log.start_point(name, offset)
            if start is None:  # an offset this feed never gives out
                invalid.append(name)
                continue
            self.conn.starts[name] = start
            self.conn.cursors[name] = start.after_seq
        if invalid:
            return {"response": command, "result": "error", "invalidTopics": invalid}
        return {"response": command, "result": "ok"}

    def _subscribe(self, message: dict[str, Any]) -> dict[str, Any]:
        self.conn.subscribed = True
        return {"response": "subscribe-v1", "result": "ok"}

