"""When to try a Fortnox call again: jittered exponential backoff, bounded by count and deadline."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import httpx

#: Transport errors raised before any byte of the request left: always safe to repeat.
NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` tries in all; the n-th wait is uniform in [d/2, d], d = base·2ⁿ ≤ max."""

    max_attempts: int = 6
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay_s(self, retry: int) -> float:
        """How long to wait before retry number ``retry`` (0-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * float(2**retry))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def next_delay(self, retry: int, deadline: float | None) -> float | None:
        """The wait before retry ``retry``, or ``None`` when out of attempts or of time."""
        if retry + 1 >= self.max_attempts:
            return None
        delay = self.delay_s(retry)
        if deadline is not None and time.monotonic() + delay >= deadline:
            return None
        return delay


def remaining_s(deadline: float | None, cap: float) -> float:
    """Seconds left until ``deadline``, at most ``cap`` (at least a millisecond)."""
    if deadline is None:
        return cap
    return max(0.001, min(cap, deadline - time.monotonic()))
