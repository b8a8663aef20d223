"""The ports the feed's use cases need: the store every replica shares, the WebSocket to
Fortnox, and fresh access tokens. The adapters implement them; nothing here speaks SQL or
WebSocket.

Every store method may raise ``StorageUnavailable``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from core.feed.model import BookChange, FeedEvent, Watch, WatchTarget, YearChanges


class HolderLost(Exception):
    """The holder lease now belongs to another replica (or another generation): whatever this
    replica was about to store is refused, and it must drop the feed."""


class FeedDisconnected(Exception):
    """The WebSocket to Fortnox closed or failed; the holder connects again."""


@dataclass(frozen=True)
class Holding:
    """This replica holds the feed as ``generation``, the fence every write proves.
    ``took_over``: the lease was another replica's before (it died, hung or stopped)."""

    owner: str
    generation: int
    took_over: bool = False


class HolderStore(Protocol):
    """The holder lease, the offsets and the recording of events, all in one database whose
    clock judges the lease."""

    async def take_holder(self, owner: str, lease_s: float) -> Holding | None:
        """Takes the lease for ``lease_s`` if it is free or expired (a new generation)."""
        ...

    async def renew_holder(self, holding: Holding, lease_s: float) -> bool:
        """Extends the lease while ``holding``'s generation is still the current one."""
        ...

    async def release_holder(self, holding: Holding) -> None:
        """Ends the lease at once (at shutdown), so another replica takes over now."""
        ...

    async def offsets(self) -> dict[str, str]:
        """The last stored offset of each topic."""
        ...

    async def record(self, holding: Holding, events: Sequence[FeedEvent]) -> int:
        """Stores ``events`` for every watched tenant of their company, drops those already
        stored, and moves each topic's offset to its last event, in one transaction that
        first proves ``holding`` is current (else ``HolderLost``, nothing stored). Returns how
        many book changes were new."""
        ...

    async def watch_targets(self, now: datetime) -> list[WatchTarget]:
        """The running watches not yet expired, with their connection's state."""
        ...

    async def end_expired_watches(self, now: datetime) -> list[str]:
        """Ends the watches whose time is up; returns their tenants."""
        ...

    async def watch_added(self, tenant: str, feed_tenant_id: int,
                          token_expires_at: datetime | None, now: datetime) -> None:
        """Notes that the tenant is on the feed as ``feed_tenant_id`` with a token valid until
        ``token_expires_at``, and clears any reason left from an earlier failure."""
        ...

    async def end_watch(self, tenant: str, reason: str, now: datetime) -> None:
        """Ends a running watch with ``reason`` (the connection revoked, the token refused)."""
        ...

    async def note_watch(self, tenant: str, reason: str) -> None:
        """Records a passing problem on a running watch (it is tried again)."""
        ...


class WatchStore(Protocol):
    """Which tenants are watched, as the RPCs start, stop and show them."""

    async def start_watch(self, tenant: str, expires_at: datetime, now: datetime,
                          max_watched: int) -> Watch | None:
        """Starts (or extends) the tenant's watch; ``None`` when ``max_watched`` other
        tenants are watched already."""
        ...

    async def stop_watch(self, tenant: str, reason: str, now: datetime) -> Watch | None:
        """Ends the tenant's watch; ``None`` if it never had one."""
        ...

    async def get_watch(self, tenant: str) -> Watch | None:
        """The tenant's watch, running or ended; ``None`` if it never had one."""
        ...

    async def list_watches(self, after: str | None, limit: int) -> list[Watch]:
        """Watches by tenant, those after ``after``."""
        ...


class ChangeStore(Protocol):
    """The recorded book changes, read by callers and swept when old."""

    async def changes_after(self, tenants: Sequence[str], cursor: int, limit: int,
                            unsettled_since: datetime) -> list[BookChange]:
        """The changes of ``tenants`` with a cursor above ``cursor``, in cursor order; a
        voucher created while the tenant has an export unsettled since ``unsettled_since`` or
        later is marked ``settling``."""
        ...

    async def swept_through(self) -> int:
        """The highest cursor the sweep has deleted (0: none): a caller behind it missed
        changes no longer kept."""
        ...

    async def sweep(self, before: datetime) -> int:
        """Deletes changes recorded before ``before``; returns how many."""
        ...

    async def year_changes(self, tenant: str, since: datetime,
                           financial_year_ids: Sequence[int]) -> list[YearChanges]:
        """Per year, the tenant's vouchers changed (recorded after ``since``), ours left out."""
        ...


@dataclass(frozen=True)
class FeedToken:
    """An access token to add a tenant to the feed with, its generation and expiry."""

    access_token: str = field(repr=False)
    generation: int
    expires_at: datetime | None


class FeedTokens(Protocol):
    """Fresh access tokens through the one shared refresh (never a second spend). Raises
    ``ConnectionRevoked``/``ReconnectRequired`` when the tenant can have none."""

    async def access(self, tenant: str) -> FeedToken:
        """A token valid now, renewed first if it is about to expire."""
        ...

    async def refused(self, tenant: str, generation: int) -> None:
        """The feed refused the token of ``generation``: get a newer one."""
        ...


@dataclass(frozen=True)
class AddedTenants:
    """The feed's answer to adding tokens: the company id of each accepted token, and the
    tokens it refused."""

    tenant_ids: Mapping[str, int]
    invalid_tokens: frozenset[str]


class FeedSession(Protocol):
    """One open WebSocket to Fortnox's topics."""

    async def add_tenants(self, access_tokens: Sequence[str]) -> AddedTenants:
        """``add-tenants-v1`` with the client secret and these tokens."""
        ...

    async def remove_tenants(self, tenant_ids: Sequence[int]) -> None:
        """``remove-tenants-v1``."""
        ...

    async def list_tenants(self) -> frozenset[int]:
        """``list-tenants-v1``: the companies whose events flow now (one whose token lapsed
        is not listed)."""
        ...

    async def add_topics(self, offsets: Mapping[str, str | None]) -> None:
        """``add-topics-v1``: each topic from its offset (``None``: from now); sent again, a
        topic restarts from the new offset."""
        ...

    async def subscribe(self) -> None:
        """``subscribe-v1``: events start to flow."""
        ...

    async def receive(self, max_events: int) -> list[FeedEvent]:
        """The next events (at least one, at most ``max_events``), waiting for the first;
        ``FeedDisconnected`` once the socket is gone."""
        ...


class FeedClient(Protocol):
    """Opens sessions to the feed."""

    def connect(self) -> AbstractAsyncContextManager[FeedSession]:
        """A session, closed when the block ends; ``FeedDisconnected`` if it cannot open."""
        ...


class FeedStore(HolderStore, WatchStore, ChangeStore, Protocol):
    """The three on one database (each backend implements them in one class)."""
