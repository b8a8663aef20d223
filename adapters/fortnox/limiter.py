"""Client-side sliding-window limiter: never more than N requests per W seconds per company.

Fortnox admits a request when fewer than N were admitted in the trailing W seconds. We cannot
see when Fortnox admitted a request, only that it happened between sending it and receiving
its answer. So a slot counts from the moment the request is sent and is dated by the moment
its answer arrives: the (N+1)-th request goes out only W seconds after the answer to the 1st,
which is after Fortnox admitted the 1st whatever the network latency.

The slots live in a :class:`RateWindow`: in this process (:class:`LocalWindow`), or in the
database every replica shares, so that all processes talking to one company keep within one
limit together. A slot whose answer never came (its process died) stops counting after
``stale_after_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from core.errors import StorageUnavailable

_log = logging.getLogger(__name__)

#: Added to the window for clock granularity.
_MARGIN_S = 0.002


@dataclass(frozen=True)
class Claim:
    """A slot taken (``slot_id``), or none free and how long until one may be."""

    slot_id: int | None
    wait_s: float = 0.0


class RateWindow(Protocol):
    """Where the slots of every company's window are kept, and claimed one at a time."""

    async def claim(self, key: str, limit: int, window_s: float, stale_after_s: float) -> Claim:
        """Takes a slot of ``key``'s window if fewer than ``limit`` count in it."""
        ...

    async def finish(self, key: str, slot_id: int) -> None:
        """Dates the slot by now: its answer arrived."""
        ...


def wait_for_free_slot(
    now: float, oldest_done: float | None, window_s: float
) -> float:
    """Seconds until a full window may have room: when its oldest answered slot leaves it,
    and never sooner than a whole window for a slot still in flight."""
    if oldest_done is None:
        return window_s
    return max(0.0, min(oldest_done + window_s - now, window_s))


class LocalWindow:
    """The window in this process's memory: right for one process, and for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ids = itertools.count(1)
        # key -> slot id -> (sent, done or None)
        self._slots: dict[str, dict[int, tuple[float, float | None]]] = {}

    async def claim(self, key: str, limit: int, window_s: float, stale_after_s: float) -> Claim:
        now = self._clock()
        slots = self._slots.setdefault(key, {})
        for slot_id, (sent, done) in list(slots.items()):
            if (done is not None and done <= now - window_s) or (
                done is None and sent <= now - stale_after_s
            ):
                del slots[slot_id]
        if len(slots) < limit:
            slot_id = next(self._ids)
            slots[slot_id] = (now, None)
            return Claim(slot_id)
        done_times = [done for _, done in slots.values() if done is not None]
        return Claim(None, wait_for_free_slot(now, min(done_times, default=None), window_s))

    async def finish(self, key: str, slot_id: int) -> None:
        slots = self._slots.get(key, {})
        if slot_id in slots:
            slots[slot_id] = (slots[slot_id][0], self._clock())


@dataclass
class Slot:
    """One admitted request; ``await done()`` dates it (idempotent)."""

    _limiter: SlidingWindowLimiter = field(repr=False)
    _key: str
    _slot_id: int
    _finished: bool = False

    async def done(self) -> None:
        """Marks the answer as received now. The window is told beside the caller, who need
        not wait for it (a shared window's write); until then the slot counts on, the safe
        side."""
        if not self._finished:
            self._finished = True
            self._limiter._finish_soon(self._key, self._slot_id)


class _Waiters:
    """This process's callers of one company: served first come, first served, and woken
    when one of their own slots is answered."""

    def __init__(self) -> None:
        self.queue = asyncio.Lock()
        self.changed = asyncio.Event()


class SlidingWindowLimiter:
    """One window per company key, shared by every call to that company through ``window``.

    The window is widened by ``_MARGIN_S`` for clock granularity; ``stale_after_s`` is how
    long an unanswered slot counts (longer than any request may take).
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        window: RateWindow | None = None,
        stale_after_s: float = 120.0,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("the rate limit needs at least 1 request per positive window")
        self.limit = limit
        self.window_s = window_s
        self._window = window if window is not None else LocalWindow()
        self._stale_after_s = stale_after_s
        self._waiters: dict[str, _Waiters] = {}
        self._finishing: set[asyncio.Task[None]] = set()  # held, so they are not collected

    async def acquire(self, key: str) -> Slot:
        """Waits until a request to ``key`` may be sent; ``await done()`` on its answer."""
        waiters = self._waiters.get(key)
        if waiters is None:
            waiters = self._waiters[key] = _Waiters()
        async with waiters.queue:
            while True:
                waiters.changed.clear()
                claim = await self._window.claim(
                    key, self.limit, self.window_s + _MARGIN_S, self._stale_after_s
                )
                if claim.slot_id is not None:
                    return Slot(self, key, claim.slot_id)
                if claim.wait_s < self.window_s:
                    # A slot frees only as time passes (an answer dates a slot, it frees
                    # none), so the wait is exact: claiming again at each answer meanwhile
                    # would cost the shared window a transaction and free nothing.
                    await asyncio.sleep(claim.wait_s + _MARGIN_S)  # the loop may wake early
                    continue
                # No slot answered yet: the first answer (here) says when one frees.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiters.changed.wait(), timeout=claim.wait_s)

    async def aclose(self) -> None:
        """Waits for the answers still being dated, so a stopping process leaves no slot of
        its own counting until it is stale."""
        await asyncio.gather(*self._finishing, return_exceptions=True)

    def _finish_soon(self, key: str, slot_id: int) -> None:
        task = asyncio.create_task(self._finish(key, slot_id))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish(self, key: str, slot_id: int) -> None:
        try:
            await self._window.finish(key, slot_id)
        except StorageUnavailable:
            # The slot keeps counting until it is stale: slower, never over the limit.
            _log.warning("could not date a rate-limit slot", extra={"company": key})
        waiters = self._waiters.get(key)
        if waiters is not None:
            waiters.changed.set()
