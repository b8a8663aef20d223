"""The one replica that holds Fortnox's WebSocket, elected and fenced through the database.

Every replica runs a :class:`FeedHolder`. It tries to take the holder lease; the one that gets
it renews it every few seconds and, while it holds it, keeps one session to the feed open:
the watched tenants added with fresh tokens, every topic resumed from the offset the
deployment stored last, events recorded in batches. Each batch is stored in one transaction
that first proves the lease's generation is still this replica's, and moves the offsets only
with the events they cover, so a replica that died or hung can neither lose events nor store
any after another has taken over. Duplicates are dropped by the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.errors import ConnectionRevoked, DomainError, ReconnectRequired, StorageUnavailable
from core.feed.model import TOPICS, WatchTarget
from core.feed.ports import (
    FeedClient,
    FeedDisconnected,
    FeedSession,
    FeedTokens,
    HolderLost,
    HolderStore,
    Holding,
)

_log = logging.getLogger(__name__)

#: Why a watch ends when the feed refused its token twice in a row (after a fresh one).
TOKEN_REFUSED_REASON = "Fortnox's feed refused the tenant's access token (invalidTokens)."
#: Why a watch ends when its connection can no longer give tokens, by the connection's state.
CONNECTION_GONE_REASONS = {
    "REVOKED": "The tenant's Fortnox connection was revoked or disconnected",
    "RECONNECT_REQUIRED": "The tenant must log in to Fortnox again",
}


@dataclass(frozen=True)
class HolderSettings:
    """How the holder paces itself. ``lease_s``: how long a lease lasts unrenewed (the longest
    a dead holder delays the feed); renewals come every third of it."""

    lease_s: float = 10.0
    sync_every_s: float = 2.0
    reconnect_after_s: float = 2.0
    readd_before: timedelta = timedelta(minutes=4)
    batch: int = 500
    add_chunk: int = 100
    topics: tuple[str, ...] = TOPICS


@dataclass
class _OnFeed:
    """A tenant this session added: its company id and the expiry of the token used."""

    feed_tenant_id: int
    token_expires_at: datetime | None


@dataclass
class _Session:
    """What one open session has added."""

    tenants: dict[str, _OnFeed] = field(default_factory=dict)
    refused_once: set[str] = field(default_factory=set)


class FeedHolder:
    """Takes the holder lease when it is free, and holds the feed while it has it."""

    def __init__(self, store: HolderStore, client: FeedClient, tokens: FeedTokens, owner: str,
                 *, clock: Callable[[], datetime], settings: HolderSettings | None = None
                 ) -> None:
        self._store = store
        self._client = client
        self._tokens = tokens
        self._owner = owner
        self._clock = clock
        self._settings = settings or HolderSettings()
        #: Set while this replica holds the feed (tests and metrics read it).
        self.holding: Holding | None = None

    async def run(self) -> None:
        """Runs until cancelled: waits for the lease, holds the feed, and again."""
        settings = self._settings
        while True:
            try:
                holding = await self._store.take_holder(self._owner, settings.lease_s)
            except StorageUnavailable as exc:
                _log.warning("feed holder lease unavailable", extra={"detail": exc.message})
                holding = None
            if holding is None:
                await asyncio.sleep(settings.lease_s / 3)
                continue
            _log.info("holding fortnox feed", extra={"generation": holding.generation,
                                                     "took_over": holding.took_over})
            try:
                await self.hold(holding)
            except HolderLost:
                _log.warning("fortnox feed lease lost", extra={"generation": holding.generation})
            except Exception:  # the holder must outlive any one failure; the lease is given up
                _log.exception("fortnox feed holder failed; it tries again")
                await asyncio.sleep(settings.reconnect_after_s)

    async def hold(self, holding: Holding) -> None:
        """Holds the feed as ``holding`` until the lease is lost (``HolderLost``) or the task
        is cancelled, when the lease is given up at once."""
        self.holding = holding
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._renew(holding))
                group.create_task(self._sessions(holding))
        except* HolderLost:
            raise HolderLost() from None
        finally:
            self.holding = None
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.release_holder(holding))

    async def _renew(self, holding: Holding) -> None:
        every = self._settings.lease_s / 3
        while True:
            await asyncio.sleep(every)
            try:
                renewed = await self._store.renew_holder(holding, self._settings.lease_s)
            except StorageUnavailable:
                continue  # the lease runs on; the next renewal tries again
            if not renewed:
                raise HolderLost()

    async def _sessions(self, holding: Holding) -> None:
        """Keeps a session open while anyone is watched; opens another after a failure."""
        settings = self._settings
        while True:
            try:
                await self._store.end_expired_watches(self._clock())
                if not await self._store.watch_targets(self._clock()):
                    await asyncio.sleep(settings.sync_every_s)
                    continue
                async with self._client.connect() as session:
                    await self._session(holding, session)
            except* (FeedDisconnected, StorageUnavailable) as group:
                _log.warning("fortnox feed session ended; connecting again",
                             extra={"error": type(group.exceptions[0]).__name__})
                await asyncio.sleep(settings.reconnect_after_s)

    async def _session(self, holding: Holding, session: FeedSession) -> None:
        state = _Session()
        await self.sync(session, state)
        await self._resume_topics(session)
        await session.subscribe()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._sync_loop(session, state))
            group.create_task(self._record_loop(holding, session))

    async def _resume_topics(self, session: FeedSession) -> None:
        """Every topic from the last offset stored (events after it come again if they were
        received but not yet stored; the store drops what it has)."""
        offsets = await self._store.offsets()
        await session.add_topics({topic: offsets.get(topic) for topic in self._settings.topics})

    async def _record_loop(self, holding: Holding, session: FeedSession) -> None:
        while True:
            events = await session.receive(self._settings.batch)
            await self._store.record(holding, events)

    async def _sync_loop(self, session: FeedSession, state: _Session) -> None:
        while True:
            await asyncio.sleep(self._settings.sync_every_s)
            if await self.sync(session, state, check_flowing=True):
                await self._resume_topics(session)

    async def sync(self, session: FeedSession, state: _Session, *,
                   check_flowing: bool = False) -> bool:
        """Brings the feed's tenants in line with the watches: adds the new ones, adds again
        those whose token is about to expire or whose events stopped (a token that lapsed at
        Fortnox), removes those no longer watched. True when a tenant's events had stopped:
        what Fortnox skipped for it meanwhile must be read again from the stored offsets."""
        now = self._clock()
        await self._store.end_expired_watches(now)
        targets = {t.tenant: t for t in await self._store.watch_targets(now)}
        flowing = await session.list_tenants() if check_flowing and state.tenants else None
        lapsed = False
        due: list[WatchTarget] = []
        for target in targets.values():
            if target.connection_state != "CONNECTED":
                lost = CONNECTION_GONE_REASONS.get(
                    target.connection_state, "The tenant's Fortnox connection is unusable")
                why = f"{lost}: {target.connection_reason}" if target.connection_reason else lost
                await self._store.end_watch(target.tenant, why + ("" if why.endswith(".")
                                                                  else "."), now)
                continue
            on_feed = state.tenants.get(target.tenant)
            if on_feed is None:
                due.append(target)
            elif flowing is not None and on_feed.feed_tenant_id not in flowing:
                lapsed = True
                due.append(target)
            elif (on_feed.token_expires_at is not None
                  and on_feed.token_expires_at - self._settings.readd_before <= now):
                due.append(target)
        for start in range(0, len(due), self._settings.add_chunk):
            await self._add(session, state, due[start:start + self._settings.add_chunk])
        gone = [tenant for tenant in state.tenants
                if tenant not in targets or targets[tenant].connection_state != "CONNECTED"]
        if gone:
            kept = {on.feed_tenant_id for t, on in state.tenants.items() if t not in gone}
            ids = sorted({state.tenants[t].feed_tenant_id for t in gone} - kept)
            for tenant in gone:
                del state.tenants[tenant]
            if ids:
                await session.remove_tenants(ids)
        return lapsed

    async def _add(self, session: FeedSession, state: _Session, targets: list[WatchTarget]
                   ) -> None:
        now = self._clock()
        tokens: dict[str, tuple[str, int, datetime | None]] = {}
        for target in targets:
            try:
                token = await self._tokens.access(target.tenant)
            except (ConnectionRevoked, ReconnectRequired) as exc:
                reason = exc.metadata.get("state_reason") or exc.message
                await self._store.end_watch(target.tenant, reason, now)
                continue
            except DomainError as exc:  # Fortnox or the storage away: tried again next sync
                await self._store.note_watch(target.tenant, exc.message)
                continue
            tokens[f"Bearer {token.access_token}"] = (target.tenant, token.generation,
                                                      token.expires_at)
        if not tokens:
            return
        added = await session.add_tenants(list(tokens))
        for bearer, (tenant, generation, expires_at) in tokens.items():
            feed_id = added.tenant_ids.get(bearer)
            if feed_id is not None and bearer not in added.invalid_tokens:
                state.tenants[tenant] = _OnFeed(feed_id, expires_at)
                state.refused_once.discard(tenant)
                await self._store.watch_added(tenant, feed_id, expires_at, now)
            elif tenant in state.refused_once:  # the next sync removes it from the feed
                state.refused_once.discard(tenant)
                await self._store.end_watch(tenant, TOKEN_REFUSED_REASON, now)
            else:  # perhaps it had just expired: one fresh token before giving up
                state.refused_once.add(tenant)
                await self._store.note_watch(tenant, TOKEN_REFUSED_REASON)
                with contextlib.suppress(DomainError):
                    await self._tokens.refused(tenant, generation)
