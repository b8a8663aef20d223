"""Starting, stopping and showing the watch of a tenant: which companies the feed follows is
the caller's choice, bounded in time and number."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from core.clock import Clock
from core.connections import ConnectionRecords, require_connected
from core.errors import FieldViolation, InvalidRequest, WatchLimitReached, WatchNotFound
from core.feed.model import Watch
from core.feed.ports import WatchStore

#: Why a watch ends when the caller stops it.
STOPPED_REASON = "Stopped by the caller."


@dataclass(frozen=True)
class WatchLimits:
    """The longest a watch may run, and how many tenants may be watched at once."""

    max_duration: timedelta = timedelta(days=120)
    max_watched: int = 2000


class Watching:
    """The watch RPCs' use case."""

    def __init__(self, store: WatchStore, connections: ConnectionRecords, clock: Clock,
                 limits: WatchLimits) -> None:
        self._store = store
        self._connections = connections
        self._clock = clock
        self._limits = limits

    async def start(self, tenant: str, duration: timedelta) -> Watch:
        """Watches a connected tenant for ``duration`` from now (again: a new expiry)."""
        if not timedelta(0) < duration <= self._limits.max_duration:
            days = self._limits.max_duration.total_seconds() / 86400
            raise InvalidRequest("duration is out of range.", violations=(FieldViolation(
                "duration", f"must be more than 0 and at most {days:g} days"),))
        require_connected(await self._connections.connection(tenant))
        now = self._clock()
        watch = await self._store.start_watch(tenant, now + duration, now,
                                              self._limits.max_watched)
        if watch is None:
            raise WatchLimitReached(
                f"{self._limits.max_watched} tenants are watched already; stop one first.",
                metadata={"max_watched": str(self._limits.max_watched)})
        return watch

    async def stop(self, tenant: str) -> Watch:
        """Ends the tenant's watch (an ended one stays as it ended)."""
        watch = await self._store.stop_watch(tenant, STOPPED_REASON, self._clock())
        if watch is None:
            raise WatchNotFound("The tenant has never been watched.", metadata={"tenant": tenant})
        return watch

    async def get(self, tenant: str) -> Watch:
        """The tenant's watch, running or ended (with why)."""
        watch = await self._store.get_watch(tenant)
        if watch is None:
            raise WatchNotFound("The tenant has never been watched.", metadata={"tenant": tenant})
        return watch

    async def list(self, after: str | None, limit: int) -> list[Watch]:
        """Every watch, by tenant."""
        return await self._store.list_watches(after, limit)
