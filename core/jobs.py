"""Background work that must run once per period however many replicas run: a lease decides.

Every replica runs a :class:`JobRunner` with the same jobs. Before each run a runner asks the
:class:`JobLeases` port for the job's lease; the port grants it to one replica per period (it is
held until ``every_s`` after it was taken, by the database's clock), and the others skip that
run. A replica that dies holding a lease only delays the next run to the lease's end. A failed
run, or a database that cannot be reached, is logged and tried again the next period: the
runner ends only when it is cancelled (at shutdown).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from core.clock import Clock
from core.errors import StorageUnavailable
from core.imports import ImportHistory
from core.token_store import TokenStore

_log = logging.getLogger(__name__)


class JobLeases(Protocol):
    """Who runs a job this period, kept where every replica sees it."""

    async def take(self, job: str, owner: str, period_s: float) -> bool:
        """Takes ``job``'s lease for ``period_s`` if nobody holds it now; True if taken."""
        ...


@dataclass(frozen=True)
class Job:
    """A named piece of work done once every ``every_s`` seconds across all replicas."""

    name: str
    every_s: float
    run: Callable[[], Awaitable[None]]


class JobRunner:
    """Runs each job whenever this replica gets its lease, until cancelled."""

    def __init__(self, leases: JobLeases, owner: str, jobs: list[Job]) -> None:
        self._leases = leases
        self._owner = owner
        self._jobs = jobs

    async def run(self) -> None:
        """Runs every job's loop; returns only by cancellation."""
        async with asyncio.TaskGroup() as group:
            for job in self._jobs:
                group.create_task(self._loop(job), name=f"job {job.name}")

    async def _loop(self, job: Job) -> None:
        while True:
            await self.run_once(job)
            await asyncio.sleep(job.every_s)

    async def run_once(self, job: Job) -> bool:
        """One period of ``job``: runs it if this replica gets the lease; True if it ran."""
        try:
            if not await self._leases.take(job.name, self._owner, job.every_s):
                return False
            await job.run()
        except StorageUnavailable as exc:  # the database is away: no traceback to add
            _log.warning("background job failed; it runs again next period",
                         extra={"job": job.name, "error": type(exc).__name__,
                                "detail": exc.message})
            return False
        except Exception as exc:  # the loop must outlive any one failure
            _log.warning(
                "background job failed; it runs again next period",
                extra={"job": job.name, "error": type(exc).__name__}, exc_info=True,
            )
            return False
        return True


#: How often expired OAuth states are purged (they live ten minutes; nothing reads them after).
PURGE_STATES_EVERY_S = 600.0


def housekeeping_jobs(
    imports: ImportHistory, tokens: TokenStore, clock: Clock, sweep_every_s: float
) -> list[Job]:
    """The service's background jobs: imports whose worker died (in any replica, or in this
    one before a restart) are recorded as failed, and expired OAuth states are deleted."""

    async def sweep_abandoned_imports() -> None:
        failed = await imports.fail_abandoned()
        if failed:
            _log.warning("marked abandoned imports as failed", extra={"imports": failed})

    async def purge_expired_states() -> None:
        purged = await tokens.purge_expired_states(clock())
        if purged:
            _log.info("purged expired OAuth states", extra={"states": purged})

    return [
        Job("sweep-abandoned-imports", sweep_every_s, sweep_abandoned_imports),
        Job("purge-expired-oauth-states", PURGE_STATES_EVERY_S, purge_expired_states),
    ]
