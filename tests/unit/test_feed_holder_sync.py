"""The holder's own logic, with fakes of its ports: which tenants it adds to the feed, when it
adds them again, when it removes them and when it ends a watch (and why)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

from core.errors import ConnectionRevoked
from core.feed.holder import TOKEN_REFUSED_REASON, FeedHolder, HolderSettings, _Session
from core.feed.model import FeedEvent, WatchTarget
from core.feed.ports import AddedTenants, FeedSession, FeedToken

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Store:
    """The holder's store as far as ``sync`` uses it."""

    def __init__(self) -> None:
        self.targets: dict[str, WatchTarget] = {}
        self.ended: dict[str, str] = {}
        self.noted: dict[str, str] = {}
        self.added: dict[str, int] = {}

    def watch(self, tenant: str, state: str = "CONNECTED", reason: str = "") -> None:
        self.targets[tenant] = WatchTarget(tenant, 0, None, state, reason)

    async def end_expired_watches(self, now: datetime) -> list[str]:
        return []

    async def watch_targets(self, now: datetime) -> list[WatchTarget]:
        return list(self.targets.values())

    async def watch_added(self, tenant: str, feed_tenant_id: int,
                          token_expires_at: datetime | None, now: datetime) -> None:
        self.added[tenant] = feed_tenant_id

    async def end_watch(self, tenant: str, reason: str, now: datetime) -> None:
        self.ended[tenant] = reason
        self.targets.pop(tenant, None)

    async def note_watch(self, tenant: str, reason: str) -> None:
        self.noted[tenant] = reason


class Tokens:
    """Each tenant's token, renewed (a new generation) when ``refused`` or asked once due."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.generation: dict[str, int] = {}
        self.refused_calls: list[tuple[str, int]] = []
        self.revoked: set[str] = set()
        self.expires: dict[str, datetime] = {}

    async def access(self, tenant: str) -> FeedToken:
        if tenant in self.revoked:
            raise ConnectionRevoked("gone", metadata={"state_reason": "consent revoked"})
        generation = self.generation.setdefault(tenant, 1)
        expires = self.expires.setdefault(tenant, self.clock() + HOUR)
        if expires - timedelta(minutes=5) <= self.clock():  # due: renewed
            generation = self.generation[tenant] = generation + 1
            expires = self.expires[tenant] = self.clock() + HOUR
        return FeedToken(f"{tenant}-{generation}", generation, expires)

    async def refused(self, tenant: str, generation: int) -> None:
        self.refused_calls.append((tenant, generation))
        self.generation[tenant] = generation + 1


class Session:
    """The feed: company id per tenant name (``acme-3`` is acme's third token)."""

    def __init__(self, companies: Mapping[str, int]) -> None:
        self.companies = companies
        self.added: list[list[str]] = []
        self.removed: list[list[int]] = []
        self.refuse: set[str] = set()
        self.flowing: set[int] | None = None

    async def add_tenants(self, access_tokens: Sequence[str]) -> AddedTenants:
        self.added.append(list(access_tokens))
        bad = {t for t in access_tokens if t in self.refuse}
        return AddedTenants({t: self.companies[t.split()[1].rsplit("-", 1)[0]]
                             for t in access_tokens if t not in bad}, frozenset(bad))

    async def remove_tenants(self, tenant_ids: Sequence[int]) -> None:
        self.removed.append(list(tenant_ids))

    async def list_tenants(self) -> frozenset[int]:
        added = {self.companies[t.split()[1].rsplit("-", 1)[0]] for a in self.added for t in a}
        return frozenset(added if self.flowing is None else self.flowing)

    async def add_topics(self, offsets: Mapping[str, str | None]) -> None: ...

    async def subscribe(self) -> None: ...

    async def receive(self, max_events: int) -> list[FeedEvent]:
        raise AssertionError("not read in these tests")


class NoClient:
    def connect(self) -> AbstractAsyncContextManager[FeedSession]:
        raise AssertionError("not connected in these tests")


def holder(store: Store, tokens: Tokens, clock: Clock) -> FeedHolder:
    return FeedHolder(store, NoClient(), tokens, "me", clock=clock,  # type: ignore[arg-type]
                      settings=HolderSettings())


async def test_new_watches_are_added_and_added_again_before_their_token_expires() -> None:
    clock, store = Clock(), Store()
    tokens = Tokens(clock)
    feed, state = Session({"acme": 1001, "beta": 1002}), _Session()
    store.watch("acme")
    store.watch("beta")
    sync = holder(store, tokens, clock).sync
    await sync(feed, state)
    assert feed.added == [["Bearer acme-1", "Bearer beta-1"]]
    assert store.added == {"acme": 1001, "beta": 1002}
    clock.now += timedelta(minutes=30)
    await sync(feed, state)
    assert len(feed.added) == 1  # nothing due
    clock.now += timedelta(minutes=26)  # 4 minutes left: added again with a fresh token
    await sync(feed, state)
    assert feed.added[1] == ["Bearer acme-2", "Bearer beta-2"]


async def test_ended_watches_and_gone_connections_are_removed_with_a_reason() -> None:
    clock, store = Clock(), Store()
    tokens = Tokens(clock)
    feed, state = Session({"acme": 1001, "beta": 1002, "gamma": 1003}), _Session()
    for tenant in ("acme", "beta", "gamma"):
        store.watch(tenant)
    sync = holder(store, tokens, clock).sync
    await sync(feed, state)
    del store.targets["acme"]  # the caller stopped it
    store.watch("beta", "RECONNECT_REQUIRED", "Fortnox no longer accepts the refresh token.")
    await sync(feed, state)
    assert sorted(company for removed in feed.removed for company in removed) == [1001, 1002]
    assert store.ended == {"beta": "The tenant must log in to Fortnox again:"
                                   " Fortnox no longer accepts the refresh token."}
    tokens.revoked.add("gamma")
    clock.now += timedelta(minutes=57)
    await sync(feed, state)
    assert store.ended["gamma"] == "consent revoked"


async def test_a_refused_token_gets_one_fresh_one_then_the_watch_ends() -> None:
    clock, store = Clock(), Store()
    tokens = Tokens(clock)
    feed, state = Session({"acme": 1001, "beta": 1002}), _Session()
    store.watch("acme")
    store.watch("beta")
    feed.refuse = {"Bearer beta-1", "Bearer beta-2"}
    sync = holder(store, tokens, clock).sync
    await sync(feed, state)
    assert tokens.refused_calls == [("beta", 1)] and store.noted["beta"] == TOKEN_REFUSED_REASON
    assert "beta" not in store.ended
    await sync(feed, state)
    assert store.ended == {"beta": TOKEN_REFUSED_REASON}
    assert store.added == {"acme": 1001}


async def test_a_tenant_fortnox_stopped_is_added_again_and_its_topics_read_again() -> None:
    clock, store = Clock(), Store()
    tokens = Tokens(clock)
    feed, state = Session({"acme": 1001, "beta": 1002}), _Session()
    store.watch("acme")
    store.watch("beta")
    sync = holder(store, tokens, clock).sync
    await sync(feed, state)
    assert not await sync(feed, state, check_flowing=True)
    feed.flowing = {1001}  # beta's token lapsed at Fortnox
    assert await sync(feed, state, check_flowing=True)
    assert feed.added[-1] == ["Bearer beta-1"]

