"""What the adapters count for operators: Fortnox calls, retries, token refreshes, claims,
and how far this replica's clock is from the database's.

The instruments live at module level, as OpenTelemetry's own instrumentations keep theirs, so
recording is one call wherever the thing happens; ``use_meter_provider`` binds them to the
process's provider (the composition root does so once). Unbound, they record nothing.
Attribute values come from small fixed sets (methods, URL templates, status codes, error
reasons, claim kinds): never a tenant, an id or a token.
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from opentelemetry.metrics import MeterProvider, NoOpMeterProvider

from core.errors import DomainError
from core.token_store import ClaimLost

METER_NAME = "fortnox_bridge.adapters"

#: OpenTelemetry's attribute names (the Fortnox client spans carry the same ones).
METHOD = "http.request.method"
ROUTE = "url.template"
STATUS = "http.response.status_code"
SERVER = "server.address"
ERROR_TYPE = "error.type"
CLAIM_KIND = "fortnox_bridge.claim.kind"
FEED_TOPIC = "fortnox_bridge.feed.topic"
FEED_OUTCOME = "fortnox_bridge.feed.outcome"

#: OpenTelemetry's advice for ``http.client.request.duration`` (seconds).
HTTP_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

P = ParamSpec("P")
R = TypeVar("R")


class ClaimKind(enum.StrEnum):
    """What a claim in the database guards: the only values ``CLAIM_KIND`` takes."""

    TOKEN_REFRESH = "token_refresh"
    VOUCHER_EXPORT = "voucher_export"


class _Instruments:
    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter(METER_NAME)
        self.http_duration = meter.create_histogram(
            "http.client.request.duration", unit="s",
            description="Duration of each HTTP request to Fortnox (every attempt).",
            explicit_bucket_boundaries_advisory=HTTP_BUCKETS_S,
        )
        self.retries = meter.create_counter(
            "fortnox_bridge.fortnox.retries", unit="{retry}",
            description="Fortnox calls sent again after a 429, a 5xx or a connection error.",
        )
        self.refreshes = meter.create_counter(
            "fortnox_bridge.token.refreshes", unit="{refresh}",
            description="Token refreshes this process spent a refresh token on; "
            "error.type is set on failures.",
        )
        self.claims = meter.create_up_down_counter(
            "fortnox_bridge.claims.active", unit="{claim}",
            description="Claims in the database this process holds now.",
        )
        self.takeovers = meter.create_counter(
            "fortnox_bridge.claims.lease_takeovers", unit="{claim}",
            description="Claims taken over from a holder whose lease ran out.",
        )
        self.lost = meter.create_counter(
            "fortnox_bridge.claims.lost", unit="{claim}",
            description="Claims this process found taken over by another when it renewed,"
                        " proved or wrote them (its writes fenced off).",
        )
        self.feed_events = meter.create_counter(
            "fortnox_bridge.feed.events", unit="{event}",
            description="Events received from Fortnox's change feed, by topic and outcome"
            " (recorded, or duplicate: a change already stored or of no watched tenant).",
        )
        self.feed_takeovers = meter.create_counter(
            "fortnox_bridge.feed.holder_takeovers", unit="{takeover}",
            description="Times this replica took the feed over from another holder.",
        )
        self.feed_lag = meter.create_histogram(
            "fortnox_bridge.feed.lag", unit="s",
            description="From an event's timestamp in Fortnox to its delivery to a caller.",
            explicit_bucket_boundaries_advisory=HTTP_BUCKETS_S,
        )
        self.clock_offset = meter.create_gauge(
            "fortnox_bridge.clock.offset", unit="s",
            description="This replica's clock minus the database's, as last measured.",
        )


_bound = _Instruments(NoOpMeterProvider())


def use_meter_provider(provider: MeterProvider) -> None:
    """Records from now on into ``provider`` (a ``NoOpMeterProvider`` stops recording)."""
    global _bound
    _bound = _Instruments(provider)


def _error_type(exc: BaseException) -> str:
    """A bounded name for a failure: the domain error's reason, else the exception's class."""
    return exc.reason if isinstance(exc, DomainError) else type(exc).__name__


@dataclass
class HttpAttempt:
    """One HTTP request to Fortnox, timed from its creation until ``answered`` or ``failed``."""

    method: str
    template: str
    server: str
    started: float = field(default_factory=time.perf_counter)

    def answered(self, status: int) -> None:
        """Fortnox answered with ``status`` (4xx and 5xx set ``error.type`` to the code)."""
        attributes: dict[str, str | int] = {STATUS: status}
        if status >= 400:
            attributes[ERROR_TYPE] = str(status)
        self._record(attributes)

    def failed(self, exc: BaseException) -> None:
        """No answer came (connection refused, dropped, timed out)."""
        self._record({ERROR_TYPE: type(exc).__name__})

    def _record(self, attributes: dict[str, str | int]) -> None:
        attributes |= {METHOD: self.method, ROUTE: self.template, SERVER: self.server}
        _bound.http_duration.record(time.perf_counter() - self.started, attributes)


def fortnox_retry(method: str, template: str, reason: str) -> None:
    """A call is sent again; ``reason`` is ``"HTTP 429"``-style or a transport error's class."""
    _bound.retries.add(1, {METHOD: method, ROUTE: template,
                           ERROR_TYPE: reason.removeprefix("HTTP ")})


def counts_token_refreshes(
    spend: Callable[P, Awaitable[R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Decorates the coroutine that spends a refresh token: counts it and how it failed."""

    @functools.wraps(spend)
    async def counted(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            result = await spend(*args, **kwargs)
        except ClaimLost:  # taken over (almost always before sending): the winner counts it
            raise
        except Exception as exc:
            _bound.refreshes.add(1, {ERROR_TYPE: _error_type(exc)})
            raise
        _bound.refreshes.add(1)
        return result

    return counted


def claim_taken(kind: ClaimKind) -> None:
    """This process now holds a claim of ``kind`` (a new one, or one taken over)."""
    _bound.claims.add(1, {CLAIM_KIND: kind.value})


def claim_released(kind: ClaimKind) -> None:
    """This process completed or gave up a claim of ``kind``."""
    _bound.claims.add(-1, {CLAIM_KIND: kind.value})


def lease_taken_over(kind: ClaimKind) -> None:
    """A claim of ``kind`` whose holder's lease ran out was taken over (it died or hung)."""
    _bound.takeovers.add(1, {CLAIM_KIND: kind.value})


def claim_lost(kind: ClaimKind) -> None:
    """A claim of ``kind`` this process held was taken over by another: its renewal, proof or
    write was refused (fenced off)."""
    _bound.lost.add(1, {CLAIM_KIND: kind.value})


def feed_events(topic: str, received: int, recorded: int) -> None:
    """A batch of ``received`` events of ``topic`` stored ``recorded`` new changes."""
    _bound.feed_events.add(recorded, {FEED_TOPIC: topic, FEED_OUTCOME: "recorded"})
    if received > recorded:
        _bound.feed_events.add(received - recorded, {FEED_TOPIC: topic, FEED_OUTCOME: "duplicate"})


def feed_taken_over() -> None:
    """This replica took the feed over from another holder (it died, hung or stopped)."""
    _bound.feed_takeovers.add(1)


def feed_delivered(lag_s: float) -> None:
    """A change reached a caller ``lag_s`` seconds after Fortnox's event time."""
    _bound.feed_lag.record(max(lag_s, 0.0))


def clock_offset(seconds: float) -> None:
    """This replica's clock was measured ``seconds`` ahead of the database's (behind: < 0)."""
    _bound.clock_offset.set(seconds)
