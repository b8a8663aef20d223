"""When to try a Fortnox call again: the one decision every caller of Fortnox asks, and the one
loop that acts on it (``Retries``).

A read may be repeated after any failure Fortnox may recover from. A write (a voucher posted;
a token request, as codes and refresh tokens are single use) is repeated only when Fortnox
certainly did not act on it; once it may have arrived, its outcome is unknown and nobody
repeats it blindly. Waits grow exponentially with jitter, bounded by count and deadline.
Every retry, of an API call, a download resumed mid-body or a token request, is recorded the
same way: the span's count and event, the ``fortnox_bridge.fortnox.retries`` metric, a log line.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field

import httpx
from opentelemetry import trace

from adapters import metrics
from adapters.fortnox import tracing

log = logging.getLogger(__name__)

#: Transport errors raised before any byte of the request left: always safe to repeat.
NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` tries in all; the n-th wait is uniform in [d/2, d], d = base·2ⁿ ≤ max.
    No defaults: the service's come from its settings (``FORTNOX_HTTP_RETRY_*``)."""

    max_attempts: int
    base_delay_s: float
    max_delay_s: float
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay_s(self, retry: int) -> float:
        """How long to wait before retry number ``retry`` (0-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * float(2**retry))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


#: One try, never another.
NO_RETRY = RetryPolicy(max_attempts=1, base_delay_s=0.0, max_delay_s=0.0)


@dataclass(frozen=True)
class RetryAfter:
    """Try again after ``delay_s`` seconds."""

    delay_s: float


@dataclass(frozen=True)
class GiveUp:
    """Stop; ``outcome_unknown``: a write may have been carried out, so it must not be
    repeated blindly (its caller looks first)."""

    outcome_unknown: bool = False


Decision = RetryAfter | GiveUp

#: What a failed attempt came to: Fortnox's HTTP status, or the error that cut it short.
Outcome = int | httpx.TransportError


def decide(
    policy: RetryPolicy, attempt: int, *, idempotent: bool, outcome: Outcome,
    time_left_s: float | None,
) -> Decision:
    """Whether to try again after ``attempt`` (1 = the first) failed with ``outcome``.

    ``idempotent``: repeating the request cannot do anything twice (a ``GET``);
    ``time_left_s``: until the caller's deadline, ``None`` for none.
    """
    if isinstance(outcome, httpx.TransportError):
        if not idempotent and not isinstance(outcome, NOT_SENT_ERRORS):
            return GiveUp(outcome_unknown=True)  # the request may have arrived
        return _backoff(policy, attempt, time_left_s)
    if outcome >= 500 and not idempotent:
        return GiveUp(outcome_unknown=True)  # Fortnox failed while acting on it, or not
    if outcome == 429 or outcome >= 500:
        return _backoff(policy, attempt, time_left_s)
    return GiveUp()


class Retries:
    """The retry loop of one Fortnox request, for its caller to drive: after each failed
    attempt, ``again`` asks ``decide`` and either gives up or records the retry and waits."""

    def __init__(
        self, policy: RetryPolicy, span: trace.Span, *, method: str, route: str,
        idempotent: bool, until: float | None, tenant: str = "", count_in_span: bool = True,
    ) -> None:
        """``route``: the template spans and metrics name; ``until``: the ``time.monotonic()``
        the request ends at the latest (``None``: no limit); ``count_in_span``: whether the
        span's retry count is this loop's (a download's span counts the opening's)."""
        self._policy = policy
        self._span = span
        self._method = method
        self._route = route
        self._idempotent = idempotent
        self._until = until
        self._tenant = tenant
        self._count_in_span = count_in_span
        self.attempt = 1  # the attempt under way, 1 = the first

    async def again(self, outcome: Outcome, **event: str | int) -> GiveUp | None:
        """After the attempt under way failed with ``outcome``: the ``GiveUp`` that ends the
        loop, or ``None`` once the retry is recorded (``event``: more span event attributes)
        and waited for."""
        decision = decide(self._policy, self.attempt, idempotent=self._idempotent,
                          outcome=outcome, time_left_s=seconds_left(self._until))
        if isinstance(decision, GiveUp):
            return decision
        reason = f"HTTP {outcome}" if isinstance(outcome, int) else type(outcome).__name__
        if self._count_in_span:
            self._span.set_attribute(tracing.RETRIES, self.attempt)
        self._span.add_event("fortnox.retry", {"fortnox.reason": reason,
                                               "fortnox.delay_s": decision.delay_s, **event})
        metrics.fortnox_retry(self._method, self._route, reason)
        log.info("fortnox call retried", extra={"tenant": self._tenant, "route": self._route,
                                                "reason": reason, **event})
        self.attempt += 1
        await asyncio.sleep(decision.delay_s)
        return None


def _backoff(policy: RetryPolicy, attempt: int, time_left_s: float | None) -> Decision:
    if attempt >= policy.max_attempts:
        return GiveUp()
    delay = policy.delay_s(attempt - 1)
    if time_left_s is not None and delay >= time_left_s:
        return GiveUp()
    return RetryAfter(delay)


def seconds_left(deadline: float | None) -> float | None:
    """Seconds until the ``time.monotonic()`` ``deadline``, ``None`` for none."""
    return None if deadline is None else deadline - time.monotonic()


def remaining_s(deadline: float | None, cap: float) -> float:
    """Seconds left until ``deadline``, at most ``cap`` (at least a millisecond)."""
    if deadline is None:
        return cap
    return max(0.001, min(cap, deadline - time.monotonic()))
