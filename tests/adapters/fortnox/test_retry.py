"""The one retry decision: what is tried again, after how long, and what is never repeated."""

from __future__ import annotations

import random

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

from adapters.fortnox import FortnoxAdapter
from adapters.fortnox.retry import GiveUp, Outcome, RetryAfter, RetryPolicy, decide
from adapters.sqlite.connections import SqliteTokenStore
from core.errors import FortnoxRateLimited
from sandbox.testing import SandboxHandle
from tests.adapters.fortnox.conftest import TENANT, answers, settings_for
from tests.harness.connect import connect_adapter

POLICY = RetryPolicy(max_attempts=4, base_delay_s=1.0, max_delay_s=3.0)
REQUEST = httpx.Request("POST", "https://api.fortnox.se/3/vouchers")
UNKNOWN = GiveUp(outcome_unknown=True)


@pytest.mark.parametrize(
    ("idempotent", "outcome", "decision"),
    [
        (True, 429, "retry"),
        (False, 429, "retry"),  # refused before acting: nothing happened
        (True, 500, "retry"),
        (True, 503, "retry"),
        (False, 500, UNKNOWN),  # Fortnox may have booked it before failing
        (False, 503, UNKNOWN),
        (True, 400, GiveUp()),
        (False, 400, GiveUp()),
        (True, 401, GiveUp()),
        (True, 403, GiveUp()),
        (True, 404, GiveUp()),
        (True, httpx.ConnectError("refused", request=REQUEST), "retry"),
        (False, httpx.ConnectError("refused", request=REQUEST), "retry"),  # never left
        (False, httpx.ConnectTimeout("slow", request=REQUEST), "retry"),
        (False, httpx.PoolTimeout("busy", request=REQUEST), "retry"),
        (True, httpx.ReadTimeout("slow", request=REQUEST), "retry"),
        (False, httpx.ReadTimeout("slow", request=REQUEST), UNKNOWN),  # sent: it may have arrived
        (False, httpx.RemoteProtocolError("cut", request=REQUEST), UNKNOWN),
        (False, httpx.WriteError("cut", request=REQUEST), UNKNOWN),
        (True, httpx.RemoteProtocolError("cut", request=REQUEST), "retry"),
    ],
    ids=repr,
)
def test_what_is_tried_again(idempotent: bool, outcome: Outcome, decision: object) -> None:
    decided = decide(POLICY, 1, idempotent=idempotent, outcome=outcome, time_left_s=None)
    if decision == "retry":
        assert isinstance(decided, RetryAfter)
        assert 0.5 <= decided.delay_s <= 1.0
    else:
        assert decided == decision


@pytest.mark.parametrize("outcome", [429, 503, httpx.ConnectError("refused", request=REQUEST)],
                         ids=repr)
def test_the_last_attempt_gives_up(outcome: Outcome) -> None:
    decisions = [decide(POLICY, attempt, idempotent=True, outcome=outcome, time_left_s=None)
                 for attempt in range(1, 6)]
    assert [isinstance(d, RetryAfter) for d in decisions] == [True, True, True, False, False]
    assert decisions[3] == GiveUp()  # given up, not unknown: nothing was done


def test_waits_double_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=1.0, max_delay_s=3.0,
                         rng=random.Random(7))
    for _ in range(50):
        delays = []
        for attempt in range(1, 10):
            decided = decide(policy, attempt, idempotent=True, outcome=503, time_left_s=None)
            assert isinstance(decided, RetryAfter)
            delays.append(decided.delay_s)
        ceilings = [1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
        assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    lowest = RetryPolicy(max_attempts=6, base_delay_s=1.0, max_delay_s=3.0, rng=_Fixed(0.0))
    highest = RetryPolicy(max_attempts=6, base_delay_s=1.0, max_delay_s=3.0, rng=_Fixed(1.0))
    assert [lowest.delay_s(n) for n in range(4)] == [0.5, 1.0, 1.5, 1.5]
    assert [highest.delay_s(n) for n in range(4)] == [1.0, 2.0, 3.0, 3.0]


def test_no_retry_that_would_wait_past_the_deadline() -> None:
    policy = RetryPolicy(max_attempts=6, base_delay_s=1.0, max_delay_s=1.0,
                         rng=_Fixed(1.0))  # waits 1 s
    assert decide(policy, 1, idempotent=True, outcome=503, time_left_s=1.5) == RetryAfter(1.0)
    assert decide(policy, 1, idempotent=True, outcome=503, time_left_s=1.0) == GiveUp()
    assert decide(policy, 1, idempotent=True, outcome=503, time_left_s=-2.0) == GiveUp()
    write_lost = httpx.ReadTimeout("slow", request=REQUEST)
    assert decide(policy, 1, idempotent=False, outcome=write_lost, time_left_s=-2.0) == UNKNOWN


def test_one_attempt_means_no_retry() -> None:
    once = RetryPolicy(max_attempts=1, base_delay_s=1.0, max_delay_s=3.0)
    assert decide(once, 1, idempotent=True, outcome=429, time_left_s=None) == GiveUp()


async def test_the_adapter_uses_the_configured_policy(
    sandbox: SandboxHandle, store: SqliteTokenStore, provider: TracerProvider
) -> None:
    settings = settings_for(sandbox, http_retry_attempts=2, http_retry_base_delay_s=0.01,
                            http_retry_max_delay_s=0.02)
    async with FortnoxAdapter(settings, store, tracer_provider=provider) as adapter:
        await connect_adapter(adapter, TENANT)
        sandbox.add_fault("rate_limit")
        with pytest.raises(FortnoxRateLimited):
            await adapter.api.financial_years(TENANT)
    assert answers(sandbox, 429) == 2


class _Fixed(random.Random):
    """Jitter pinned to one end of its range (0: the shortest wait, 1: the longest)."""

    def __init__(self, at: float) -> None:
        super().__init__()
        self._at = at

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self._at
