"""Client-side sliding-window limiter: never more than N requests per W seconds per tenant.

Fortnox admits a request when fewer than N were admitted in the trailing W seconds. We cannot
see when Fortnox admitted a request, only that it happened between sending it and receiving
its answer. So a slot counts from the moment the request is sent and is dated by the moment
its answer arrives: the (N+1)-th request goes out only W seconds after the answer to the 1st,
which is after Fortnox admitted the 1st whatever the network latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Slot:
    """One admitted request; ``done()`` dates it (idempotent)."""

    _window: _TenantWindow = field(repr=False)
    _finished: bool = False

    def done(self) -> None:
        """Marks the answer as received now."""
        if not self._finished:
            self._finished = True
            self._window.finish()


class _TenantWindow:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._log: deque[float] = deque()
        self._in_flight = 0
        self._queue = asyncio.Lock()  # first come, first served among waiting callers
        self._changed = asyncio.Event()

    def finish(self) -> None:
        self._in_flight -= 1
        self._log.append(self._clock())
        self._changed.set()

    async def acquire(self, limit: int, window: float) -> Slot:
        async with self._queue:
            while True:
                now = self._clock()
                while self._log and self._log[0] <= now - window:
                    self._log.popleft()
                if len(self._log) + self._in_flight < limit:
                    self._in_flight += 1
                    return Slot(self)
                self._changed.clear()
                wait = self._log[0] + window - now if self._log else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=wait)


class SlidingWindowLimiter:
    """One window per tenant, shared by every concurrent call of that tenant in the process.

    ``margin_s`` widens the window slightly for clock granularity.
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        margin_s: float = 0.002,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("the rate limit needs at least 1 request per positive window")
        self.limit = limit
        self.window_s = window_s
        self._margin_s = margin_s
        self._clock = clock
        self._windows: dict[str, _TenantWindow] = {}

    async def acquire(self, tenant: str) -> Slot:
        """Waits until a request for ``tenant`` may be sent; call ``done()`` on its answer."""
        window = self._windows.get(tenant)
        if window is None:
            window = self._windows[tenant] = _TenantWindow(self._clock)
        return await window.acquire(self.limit, self.window_s + self._margin_s)
