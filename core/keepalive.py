"""Keep-alive: renew every user connection's refresh token before Fortnox lets it lapse.

A Fortnox refresh token dies after 45 days unused, and year-end closing comes once a year, so
an idle connection would need a new login at every closing. The job renews each refresh token
older than a set age. It runs under ``core.jobs`` (one replica per period, by a lease in the
database); renewing itself is claimed in the database per connection as well, so even two
workers never spend one token twice. Renewals go one at a time, far inside any rate limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from core.errors import DomainError, ReconnectRequired

log = logging.getLogger(__name__)

JOB_NAME = "fortnox-keepalive"


class RefreshTokenRenewals(Protocol):
    """The token side of the Fortnox adapter, as the keep-alive needs it."""

    async def stale_refresh_tokens(self, issued_before: datetime, limit: int) -> Sequence[str]:
        """Tenants of connected user connections whose refresh token is older than that."""
        ...

    async def renew(self, tenant: str, issued_before: datetime) -> bool:
        """Renews the tenant's refresh token unless it was renewed at or after
        ``issued_before`` (then ``False``). Raises ``ReconnectRequired`` (the connection is
        then marked so, with its reason and time) when Fortnox refuses it for good, another
        ``DomainError`` when it may work later."""
        ...


class KeepAlive:
    """One pass renews up to ``batch`` refresh tokens older than ``age``, oldest first."""

    def __init__(self, renewals: RefreshTokenRenewals, *, age: timedelta,
                 clock: Callable[[], datetime], batch: int = 500) -> None:
        self._renewals = renewals
        self._age = age
        self._clock = clock
        self._batch = batch

    async def run(self) -> None:
        """One pass, as a ``core.jobs.Job`` runs it: renews what is due now; a tenant that
        fails for now is tried again next pass."""
        issued_before = self._clock() - self._age
        counts = {"renewed": 0, "renewed_elsewhere": 0, "reconnect_required": 0,
                  "failed_for_now": 0}
        for tenant in await self._renewals.stale_refresh_tokens(issued_before, self._batch):
            try:
                renewed = await self._renewals.renew(tenant, issued_before)
                counts["renewed" if renewed else "renewed_elsewhere"] += 1
            except ReconnectRequired:
                counts["reconnect_required"] += 1
                log.warning("keep-alive: refresh token refused for good; reconnect required",
                            extra={"tenant": tenant})
            except DomainError as exc:
                counts["failed_for_now"] += 1
                log.warning("keep-alive: renewal failed; tried again next pass",
                            extra={"tenant": tenant, "reason": exc.reason})
        if any(counts.values()):
            log.info("keep-alive pass", extra=counts)

