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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class KeepAliveRun:
    """What one pass did."""

    renewed: tuple[str, ...] = ()
    renewed_elsewhere: tuple[str, ...] = ()
    reconnect_required: tuple[str, ...] = ()
    failed_for_now: tuple[str, ...] = ()


class KeepAlive:
    """One pass renews up to ``batch`` refresh tokens older than ``age``, oldest first."""

    def __init__(self, renewals: RefreshTokenRenewals, *, age: timedelta,
                 clock: Callable[[], datetime], batch: int = 500) -> None:
        self._renewals = renewals
        self._age = age
        self._clock = clock
        self._batch = batch

    async def run_once(self) -> KeepAliveRun:
        """Renews what is due now; a tenant that fails for now is tried again next pass."""
        issued_before = self._clock() - self._age
        renewed: list[str] = []
        elsewhere: list[str] = []
        lost: list[str] = []
        later: list[str] = []
        for tenant in await self._renewals.stale_refresh_tokens(issued_before, self._batch):
            try:
                (renewed if await self._renewals.renew(tenant, issued_before)
                 else elsewhere).append(tenant)
            except ReconnectRequired:
                lost.append(tenant)
                log.warning("keep-alive: refresh token refused for good; reconnect required",
                            extra={"tenant": tenant})
            except DomainError as exc:
                later.append(tenant)
                log.warning("keep-alive: renewal failed; tried again next pass",
                            extra={"tenant": tenant, "reason": exc.reason})
        run = KeepAliveRun(tuple(renewed), tuple(elsewhere), tuple(lost), tuple(later))
        if any((renewed, elsewhere, lost, later)):
            log.info("keep-alive pass", extra={
                "renewed": len(renewed), "renewed_elsewhere": len(elsewhere),
                "reconnect_required": len(lost), "failed_for_now": len(later)})
        return run

    async def run(self) -> None:
        """One pass, as a ``core.jobs.Job`` runs it."""
        await self.run_once()

