"""The change feed's rows by name, and the records they make: the same for SQLite and
PostgreSQL (each backend reads its rows into these types; its own module holds its SQL)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from core.feed.model import (
    BookChange,
    ChangeKind,
    FeedEvent,
    Watch,
    WatchState,
    WatchTarget,
    YearChanges,
    change_kind,
)

#: The one row of ``feed_holder``: the deployment has one feed.
HOLDER = "fortnox-topics"


class WatchRow(NamedTuple):
    """A row of ``feed_watches``."""

    tenant: str
    state: str
    reason: str
    expires_at: datetime
    started_at: datetime
    ended_at: datetime | None
    feed_tenant_id: int
    token_expires_at: datetime | None
    added_at: datetime | None

    def watch(self) -> Watch:
        """The domain record."""
        return Watch(tenant=self.tenant, state=WatchState(self.state), reason=self.reason,
                     expires_at=self.expires_at, started_at=self.started_at,
                     ended_at=self.ended_at, feed_tenant_id=self.feed_tenant_id,
                     added_at=self.added_at)


class TargetRow(NamedTuple):
    """A running watch joined with its connection's state."""

    tenant: str
    feed_tenant_id: int
    token_expires_at: datetime | None
    connection_state: str
    connection_reason: str

    def target(self) -> WatchTarget:
        """The domain record."""
        return WatchTarget(*self)


class ChangeRow(NamedTuple):
    """A row of ``book_changes`` with whether the voucher is one the service exported."""

    seq: int
    tenant: str
    kind: str
    event_type: str
    topic: str
    entity_id: str
    financial_year_id: int
    voucher_series: str
    voucher_number: int
    occurred_at: datetime
    recorded_at: datetime
    ours: int | bool
    settling: int | bool

    def change(self) -> BookChange:
        """The domain record."""
        return BookChange(
            cursor=self.seq, tenant=self.tenant, kind=ChangeKind(self.kind),
            event_type=self.event_type, topic=self.topic, entity_id=self.entity_id,
            financial_year_id=self.financial_year_id, voucher_series=self.voucher_series,
            voucher_number=self.voucher_number, occurred_at=self.occurred_at,
            recorded_at=self.recorded_at, ours=bool(self.ours), settling=bool(self.settling))


class YearRow(NamedTuple):
    """Per financial year, the distinct vouchers changed and the changes."""

    financial_year_id: int
    changed_vouchers: int
    changes: int

    def year(self) -> YearChanges:
        """The domain record."""
        return YearChanges(*self)


def last_offsets(events: list[FeedEvent] | tuple[FeedEvent, ...]) -> dict[str, str]:
    """Each topic's offset of its last event in the batch (the order they arrived in)."""
    return {event.topic: event.offset for event in events}


def kind_of(event: FeedEvent) -> str:
    """The stored kind of an event."""
    return change_kind(event.event_type).value


#: Whether a change is of a voucher the tenant's export history says the service created.
OURS = (
    "EXISTS (SELECT 1 FROM voucher_exports x WHERE x.tenant = c.tenant"
    " AND x.status = 'created' AND c.voucher_number > 0"
    " AND x.voucher_series = c.voucher_series AND x.voucher_number = c.voucher_number"
    " AND x.financial_year_id = c.financial_year_id)"
)
#: Whether a change is a voucher created while the tenant has an export claimed but not yet
#: recorded (its one parameter: claims since then count): it may be that export's voucher.
SETTLING = (
    "(c.kind = 'voucher_created' AND NOT " + OURS + " AND EXISTS (SELECT 1 FROM voucher_exports"
    " y WHERE y.tenant = c.tenant AND y.status IN ('pending', 'unknown')"
    " AND y.attempted_at >= ?))"
)
#: The columns of a change as ``ChangeRow`` reads them.
CHANGE_COLUMNS = (
    "c.seq, c.tenant, c.kind, c.event_type, c.topic, c.entity_id, c.financial_year_id,"
    " c.voucher_series, c.voucher_number, c.occurred_at, c.recorded_at"
)
#: The columns of a watch as ``WatchRow`` reads them.
WATCH_COLUMNS = (
    "tenant, state, reason, expires_at, started_at, ended_at, feed_tenant_id,"
    " token_expires_at, added_at"
)
