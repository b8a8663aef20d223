"""The token store's contract, against each store backend: states, rotation, and the refresh
claim that lets one worker of any process spend a refresh token."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from core.connections import AccountType, ConnectionState
from core.errors import ConnectionNotFound, OAuthStateInvalid, ReconnectRequired
from core.stores import Stores
from core.token_store import (
    ClaimLost,
    ClaimOutcome,
    CompanyLink,
    OAuthStateRecord,
    RefreshClaim,
    TokenGrant,
    TokenStore,
)
from tests.adapters.stores.conftest import ManualClock, StoreFactory

LEASE = timedelta(seconds=35)
#: A lease that runs out while the test waits for it (claims that must hold use ``LEASE``).
SHORT_LEASE = timedelta(seconds=0.3)
LINK = CompanyLink("17", "Acme AB", "556677-8899")
USER = AccountType.USER


@pytest.fixture
def tokens(stores: Stores) -> TokenStore:
    return stores.tokens


def _grant(clock: ManualClock, n: int) -> TokenGrant:
    return TokenGrant(f"access-{n}", f"refresh-{n}", ("bookkeeping",),
                      clock.now + timedelta(hours=1), clock.now + timedelta(days=45))


def _state(clock: ManualClock, state: str, ttl_s: float = 600) -> OAuthStateRecord:
    return OAuthStateRecord(state, "acme", "http://localhost/cb", ("bookkeeping",), "",
                            clock.now, clock.now + timedelta(seconds=ttl_s))


async def test_a_state_works_once_and_only_until_it_expires(
    tokens: TokenStore, clock: ManualClock
) -> None:
    await tokens.create_state(_state(clock, "s1"))
    await tokens.create_state(_state(clock, "s2"))
    assert (await tokens.consume_state("s1", clock.now)).tenant == "acme"
    await tokens.create_state(_state(clock, "s3"))
    await tokens.consume_state("s3", clock.now)
    await tokens.save_connection("acme", _grant(clock, 1), LINK, USER, "s3", clock.now)
    for state, reason in (("s1", "OAUTH_CONNECT_NOT_COMPLETED"), ("s3", "OAUTH_STATE_USED"),
                          ("nope", "OAUTH_STATE_UNKNOWN")):
        with pytest.raises(OAuthStateInvalid) as refused:
            await tokens.consume_state(state, clock.now)
        assert refused.value.reason == reason
    await tokens.fail_state("s1", "FORTNOX_UNAVAILABLE")
    with pytest.raises(OAuthStateInvalid) as failed:
        await tokens.consume_state("s1", clock.now)
    assert failed.value.metadata["earlier_outcome"] == "FORTNOX_UNAVAILABLE"
    clock.advance(601)
    with pytest.raises(OAuthStateInvalid) as expired:
        await tokens.consume_state("s2", clock.now)
    assert expired.value.reason == "OAUTH_STATE_EXPIRED"


async def test_expired_states_are_purged_used_or_not(
    tokens: TokenStore, clock: ManualClock, store_factory: StoreFactory
) -> None:
    await tokens.create_state(_state(clock, "used", ttl_s=60))
    await tokens.consume_state("used", clock.now)
    await tokens.create_state(_state(clock, "unused", ttl_s=60))
    await tokens.create_state(_state(clock, "fresh", ttl_s=600))
    assert await tokens.purge_expired_states(clock.now) == 0
    clock.advance(61)
    assert await tokens.purge_expired_states(clock.now) == 2
    assert await store_factory.query("SELECT state FROM oauth_states") == [("fresh",)]
    assert (await tokens.consume_state("fresh", clock.now)).state == "fresh"


async def test_a_connection_rotates_its_tokens_and_is_revoked(
    tokens: TokenStore, clock: ManualClock
) -> None:
    assert await tokens.connection("acme") is None
    with pytest.raises(ConnectionNotFound):
        await tokens.current_tokens("acme")
    connection = await tokens.save_connection("acme", _grant(clock, 1), LINK, USER, "s0", clock.now)
    assert (connection.state, connection.company_name) == (ConnectionState.CONNECTED, "Acme AB")
    first = await tokens.current_tokens("acme")
    assert (first.generation, first.access_token) == (1, "access-1")
    claim = await tokens.claim_refresh("acme", 1, LEASE)
    assert claim.outcome is ClaimOutcome.CLAIMED and claim.tokens.refresh_token == "refresh-1"
    assert claim.claim_id and not claim.took_over
    rotated = await tokens.complete_refresh("acme", 1, claim.claim_id, _grant(clock, 2))
    assert (rotated.generation, rotated.refresh_token) == (2, "refresh-2")
    late = await tokens.claim_refresh("acme", 1, LEASE)  # a stale worker
    assert late.outcome is ClaimOutcome.REFRESHED_ELSEWHERE and late.tokens.generation == 2
    assert await tokens.refresh_token_for_revocation("acme") == "refresh-2"
    revoked = await tokens.revoke("acme", "Disconnected.", clock.now)
    assert revoked.state is ConnectionState.REVOKED
    assert await tokens.refresh_token_for_revocation("acme") is None


async def test_a_refused_refresh_token_asks_for_a_new_login(
    tokens: TokenStore, clock: ManualClock
) -> None:
    await tokens.save_connection("acme", _grant(clock, 1), LINK, USER, "s0", clock.now)
    claim = await tokens.claim_refresh("acme", 1, LEASE)
    await tokens.require_reconnect("acme", 1, claim.claim_id, "invalid_grant")
    with pytest.raises(ReconnectRequired):
        await tokens.current_tokens("acme")
    connection = await tokens.connection("acme")
    assert connection is not None and connection.reason == "invalid_grant"


async def test_one_claim_across_processes_until_released_or_its_lease_ends(
    store_factory: StoreFactory, clock: ManualClock
) -> None:
    one, other = [(await store_factory(clock=clock)).tokens for _ in range(2)]
    await one.save_connection("acme", _grant(clock, 1), LINK, USER, "s0", clock.now)
    claims = await asyncio.gather(*(
        store.claim_refresh("acme", 1, LEASE) for _ in range(10) for store in (one, other)))
    assert sorted(c.outcome.value for c in claims) == ["busy"] * 19 + ["claimed"]
    (held,) = [c for c in claims if c.outcome is ClaimOutcome.CLAIMED]
    await one.release_claim("acme", 1, "another-workers-claim")  # not its claim: no effect
    assert (await other.claim_refresh("acme", 1, LEASE)).outcome is ClaimOutcome.BUSY
    await one.release_claim("acme", 1, held.claim_id)  # the request never left: unspent
    short = await other.claim_refresh("acme", 1, SHORT_LEASE)
    assert short.outcome is ClaimOutcome.CLAIMED and not short.took_over
    # The claimer died: once its lease has run out by the database's clock, it is taken over.
    taken = await _claim_once_free(one, SHORT_LEASE)
    assert taken.took_over and taken.claim_id != short.claim_id


async def _claim_once_free(store: TokenStore, lease: timedelta) -> RefreshClaim:
    """Claims generation 1 of acme as soon as the live claim's lease has run out."""
    for _ in range(200):
        claim = await store.claim_refresh("acme", 1, lease)
        if claim.outcome is ClaimOutcome.CLAIMED:
            return claim
        await asyncio.sleep(0.05)
    raise AssertionError("the claim's lease never ran out")


async def test_a_worker_whose_claim_was_taken_over_can_neither_send_nor_write(
    store_factory: StoreFactory, clock: ManualClock
) -> None:
    paused, winner = [(await store_factory(clock=clock)).tokens for _ in range(2)]
    await paused.save_connection("acme", _grant(clock, 1), LINK, USER, "s0", clock.now)
    first = await paused.claim_refresh("acme", 1, SHORT_LEASE)
    await paused.hold_claim("acme", 1, first.claim_id, SHORT_LEASE)  # still its own
    # It pauses past its lease (SIGSTOP, a long GC): another worker takes the claim over.
    second = await _claim_once_free(winner, LEASE)
    assert second.took_over
    with pytest.raises(ClaimLost):  # the proof right before its grant request fails
        await paused.hold_claim("acme", 1, first.claim_id, LEASE)
    with pytest.raises(ClaimLost):
        await paused.complete_refresh("acme", 1, first.claim_id, _grant(clock, 9))
    with pytest.raises(ClaimLost):
        await paused.require_reconnect("acme", 1, first.claim_id, "invalid_grant")
    with pytest.raises(ClaimLost):
        await paused.consent_revoked("acme", 1, first.claim_id, "revoked")
    await paused.release_claim("acme", 1, first.claim_id)
    assert (await paused.claim_refresh("acme", 1, LEASE)).outcome is ClaimOutcome.BUSY
    current = await paused.current_tokens("acme")
    assert (current.generation, current.access_token) == (1, "access-1")
    connection = await paused.connection("acme")
    assert connection is not None and connection.state is ConnectionState.CONNECTED
    await winner.hold_claim("acme", 1, second.claim_id, LEASE)
    stored = await winner.complete_refresh("acme", 1, second.claim_id, _grant(clock, 2))
    assert (stored.generation, stored.access_token) == (2, "access-2")
    late = await paused.claim_refresh("acme", 1, LEASE)  # what the loser reads next
    assert late.outcome is ClaimOutcome.REFRESHED_ELSEWHERE and late.tokens.generation == 2

