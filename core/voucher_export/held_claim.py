"""A voucher claim while its worker holds it: renewed in the background, proved before a POST.

The lease must not run out just because the worker waits (for the rate limiter, a token, a 429
back-off, a slow look-up), so while the claim is held a task renews it every third of the
lease. Right before each POST leaves, ``still_held`` proves in the database that the claim's
fencing token is still the voucher's (renewing it once more). A worker that was paused past
its lease (a long GC pause, a frozen VM) finds its token replaced and posts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from core.errors import StorageUnavailable
from core.tasks import cancel_and_wait
from core.voucher_export.history import ClaimLost, ExportHistory, Fence

log = logging.getLogger(__name__)


class HeldClaim:
    """One voucher's claim, as its holder sees it."""

    def __init__(self, history: ExportHistory, tenant: str, external_id: str, fence: Fence,
                 lease: timedelta) -> None:
        self._history = history
        self._tenant = tenant
        self._external_id = external_id
        self.fence = fence
        self._lease = lease
        self.lost = False

    async def renew(self) -> bool:
        """Extends the lease if the claim is still this one; ``False`` once it was lost."""
        if not self.lost and not await self._history.renew(
                self._tenant, self._external_id, self.fence, self._lease):
            self.lost = True
        return not self.lost

    async def still_held(self) -> None:
        """The proof right before a POST: raises ``ClaimLost`` unless the database still
        names this claim's token (and then the lease runs a full lease from now)."""
        if not await self.renew():
            raise ClaimLost

    @contextlib.asynccontextmanager
    async def kept(self) -> AsyncIterator[HeldClaim]:
        """Renews the lease in the background while the body runs."""
        task = asyncio.create_task(self._keep())
        try:
            yield self
        finally:
            await cancel_and_wait(task)

    async def _keep(self) -> None:
        every = max(self._lease.total_seconds() / 3, 0.05)
        while not self.lost:
            await asyncio.sleep(every)
            try:
                await self.renew()
            except Exception as exc:  # tried again next time; the proof before a POST decides
                log.warning("voucher claim not renewed", exc_info=not isinstance(
                    exc, StorageUnavailable),
                    extra={"tenant": self._tenant, "external_id": self._external_id})
