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
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.errors import StorageUnavailable

_log = logging.getLogger(__name__)

#: Added to the window for clock granularity.
_MARGIN_S = 0.002


@dataclass(frozen=True)
class Claim:
    """The slots taken (``slot_ids``, at most as many as were wanted) and, when fewer than
    wanted were free, how long until one may be (``wait_s``)."""

    slot_ids: tuple[int, ...]
    wait_s: float = 0.0


@dataclass(frozen=True)
class Answered:
    """A slot whose answer arrived at ``at`` (``time.monotonic()`` of this process). The
    window dates it by its own clock less the answer's age, taken right before it reads that
    clock: never earlier than the answer came, and not later for waiting in a queue."""

    key: str
    slot_id: int
    at: float

    def age_s(self) -> float:
        """Seconds since the answer came; read it before the window's clock."""
        return max(0.0, time.monotonic() - self.at)


class RateWindow(Protocol):
    """Where the slots of every company's window are kept: claimed several at a time, one
    transaction for every caller of a company waiting in this process, and dated in batches."""

    async def claim(
        self, key: str, wanted: int, limit: int, window_s: float, stale_after_s: float
    ) -> Claim:
        """Takes up to ``wanted`` slots of ``key``'s window, as many as keep it within
        ``limit``."""
        ...

    async def finish(self, answered: Sequence[Answered]) -> None:
        """Dates each slot by when its answer arrived."""
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

    async def claim(
        self, key: str, wanted: int, limit: int, window_s: float, stale_after_s: float
    ) -> Claim:
        now = self._clock()
        slots = self._slots.setdefault(key, {})
        for slot_id, (sent, done) in list(slots.items()):
            if (done is not None and done <= now - window_s) or (
                done is None and sent <= now - stale_after_s
            ):
                del slots[slot_id]
        taken = []
        for _ in range(max(0, min(wanted, limit - len(slots)))):
            slot_id = next(self._ids)
            slots[slot_id] = (now, None)
            taken.append(slot_id)
        if len(taken) == wanted:
            return Claim(tuple(taken))
        done_times = [done for _, done in slots.values() if done is not None]
        return Claim(tuple(taken),
                     wait_for_free_slot(now, min(done_times, default=None), window_s))

    async def finish(self, answered: Sequence[Answered]) -> None:
        for one in answered:
            slots = self._slots.get(one.key, {})
            if one.slot_id in slots:
                age_s = one.age_s()
                slots[one.slot_id] = (slots[one.slot_id][0], self._clock() - age_s)


@dataclass
class Slot:
    """One admitted request; ``await done()`` dates it (idempotent)."""

    _limiter: SlidingWindowLimiter = field(repr=False)
    _key: str
    _slot_id: int
    _finished: bool = False

    async def done(self, age_s: float = 0.0) -> None:
        """Marks the answer as received ``age_s`` seconds ago (never more than it is: it dates
        the slot). The window is told beside the caller, who need not wait for it (a shared
        window's write, batched with the other answers meanwhile); until then the slot counts
        on, the safe side."""
        if not self._finished:
            self._finished = True
            self._limiter._answered(self._key, self._slot_id, age_s)


class _Waiters:
    """This process's callers of one company, served first come, first served: one task
    (``pump``) claims slots for all of them at once, and is woken when one of the company's
    slots is answered."""

    def __init__(self) -> None:
        self.pending: deque[asyncio.Future[int]] = deque()
        self.changed = asyncio.Event()
        self.pump: asyncio.Task[None] | None = None


class SlidingWindowLimiter:
    """One window per company key, shared by every call to that company through ``window``.

    The window is widened by ``_MARGIN_S`` for clock granularity; ``stale_after_s`` is how
    long an unanswered slot counts (longer than any request may take).

    What the window costs does not grow with the callers: the callers of a company waiting in
    this process are given their slots by one claim (a burst of 25 is one transaction, not
    25), and answers that arrive while the window is being written to are dated together in
    the next write.
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
        self._answers: list[Answered] = []
        self._dating: asyncio.Task[None] | None = None

    async def acquire(self, key: str) -> Slot:
        """Waits until a request to ``key`` may be sent; ``await done()`` on its answer."""
        waiters = self._waiters.get(key)
        if waiters is None:
            waiters = self._waiters[key] = _Waiters()
        turn: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        waiters.pending.append(turn)
        if waiters.pump is None:
            waiters.pump = asyncio.create_task(self._pump(key, waiters))
        try:
            # Not shielded: a caller that gives up cancels its turn, which the pump then
            # skips; a turn given as it gave up is handed back below. (A shield would cost
            # each caller one more wait in the loop's queue before it may send.)
            slot_id = await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self._answered(key, turn.result())  # given as we gave up: never sent
            turn.cancel()
            raise
        return Slot(self, key, slot_id)

    async def _pump(self, key: str, waiters: _Waiters) -> None:
        """Claims slots for the company's waiting callers until none waits."""
        try:
            while True:
                while waiters.pending and waiters.pending[0].done():
                    waiters.pending.popleft()  # gave up waiting
                wanted = sum(not turn.done() for turn in waiters.pending)
                if not wanted:
                    return
                waiters.changed.clear()
                claim = await self._window.claim(
                    key, wanted, self.limit, self.window_s + _MARGIN_S, self._stale_after_s
                )
                given = list(claim.slot_ids)
                while given and waiters.pending:
                    turn = waiters.pending.popleft()
                    if not turn.done():
                        turn.set_result(given.pop(0))
                for slot_id in given:  # its caller gave up meanwhile: never sent
                    self._answered(key, slot_id)
                if len(claim.slot_ids) == wanted:
                    continue  # everyone asked for was served; others may have come since
                if claim.wait_s < self.window_s:
                    # A slot frees only as time passes (an answer dates a slot, it frees
                    # none), so the wait is exact: claiming again at each answer meanwhile
                    # would cost the shared window a transaction and free nothing.
                    await asyncio.sleep(claim.wait_s + _MARGIN_S)  # the loop may wake early
                    continue
                # No slot answered yet: the first answer (here) says when one frees.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(claim.wait_s):
                        await waiters.changed.wait()
        except asyncio.CancelledError:  # the limiter closes: its waiting callers fail
            for turn in waiters.pending:
                if not turn.done():
                    turn.set_exception(StorageUnavailable(
                        "The rate-limit window is closed; the service is stopping."))
            waiters.pending.clear()
            raise
        except Exception as exc:  # the window failed (StorageUnavailable): so do its callers
            for turn in waiters.pending:
                if not turn.done():
                    turn.set_exception(exc)
            waiters.pending.clear()
        finally:
            waiters.pump = None

    async def aclose(self) -> None:
        """Stops claiming, and waits for the answers still being dated, so a stopping process
        leaves no slot of its own counting until it is stale."""
        pumps = [w.pump for w in self._waiters.values() if w.pump is not None]
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        while self._dating is not None:
            await asyncio.gather(self._dating, return_exceptions=True)

    def _answered(self, key: str, slot_id: int, age_s: float = 0.0) -> None:
        """Notes the answer's time (``age_s`` before now); the window is told by the dating
        task, with every other answer that arrived meanwhile."""
        self._answers.append(Answered(key, slot_id, time.monotonic() - age_s))
        if self._dating is None:
            self._dating = asyncio.create_task(self._date_answers())

    async def _date_answers(self) -> None:
        try:
            while self._answers:
                batch, self._answers = self._answers, []
                try:
                    await self._window.finish(batch)
                except StorageUnavailable:
                    # The slots keep counting until they are stale: slower, never over the
                    # limit.
                    _log.warning("could not date rate-limit slots",
                                 extra={"slots": len(batch)})
                for key in {one.key for one in batch}:
                    waiters = self._waiters.get(key)
                    if waiters is not None:
                        waiters.changed.set()
        finally:
            self._dating = None
