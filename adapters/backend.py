"""What a backend's ``Stores`` bundle holds beyond the three stores: everything else the
replicas sharing its database share through it, so the composition root picks one bundle and
nothing else (``adapters.sqlite.SqliteStores``, ``adapters.postgres.PostgresStores``)."""

from __future__ import annotations

from typing import Protocol

from adapters.clock_skew import DatabaseClock, DatabaseTime
from adapters.fortnox.limiter import RateWindow
from core.feed.ports import FeedStore
from core.jobs import JobLeases
from core.stores import Stores


class Backend(Stores, Protocol):
    """The stores, the rate-limit window, the job leases, the change feed's store and the
    database's clock, all on one database and closed together."""

    @property
    def rate_window(self) -> RateWindow:
        """The rate-limit window every replica talking to a company shares."""
        ...

    @property
    def leases(self) -> JobLeases:
        """The background jobs' leases: one replica runs each job per period."""
        ...

    @property
    def feed(self) -> FeedStore:
        """The change feed's holder lease, offsets, watches and book changes."""
        ...

    @property
    def database_time(self) -> DatabaseTime:
        """The database's clock, read by a query."""
        ...

    @property
    def database_clock(self) -> DatabaseClock:
        """The database's time as this replica reckons it (kept by the clock watch)."""
        ...
