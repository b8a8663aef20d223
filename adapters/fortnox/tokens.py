"""A tenant's access token, renewed once however many calls and workers need it at once.

Within a process, one coroutine per tenant renews while the others wait on its lock; across
processes the claim in the store (one transaction in the shared database, its lease dated by
the database's clock) lets exactly one worker spend the refresh token, or ask for a service
account's client-credentials token, while the others poll for the generation it writes. Right
before each grant request leaves, the worker proves in the database that the claim is still
its own (and renews its lease); one whose claim was taken over sends nothing and reads what
the winner stored. The keep-alive renews idle refresh tokens through the same claim.

Whether a token is due is judged by the clock the manager is given: ``serve`` gives it the
database's time as the replica reckons it (``adapters.clock_skew.DatabaseClock``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NoReturn

from adapters import metrics
from adapters.fortnox.errors import GrantAnswerLost, OAuthRefusal, RefreshNotSent
from adapters.fortnox.oauth import BeforeSend, OAuthClient
from adapters.metrics import ClaimKind
from core.connections import AccountType
from core.errors import (
    ConnectionRevoked,
    FortnoxAuthRejected,
    FortnoxUnavailable,
    ReconnectRequired,
    StorageUnavailable,
)
from core.token_store import (
    ClaimLost,
    ClaimOutcome,
    CurrentTokens,
    RefreshClaim,
    TokenGrant,
    TokenStore,
)

log = logging.getLogger(__name__)

#: How often storing a rotated token pair is tried again while the storage is away.
KEEP_RETRY_S = 0.5

INVALID_GRANT_REASON = "Fortnox no longer accepts the refresh token (invalid_grant)."
LOST_ANSWER_REASON = (
    "Fortnox renewed the tokens but its answer was lost on the way, so the new refresh token"
    " never arrived; the old one is spent (invalid_grant)."
)
CONSENT_REVOKED_REASON = (
    "The customer revoked the service-account consent in Fortnox (invalid_grant); the"
    " company's system administrator must connect again."
)

#: How often a caller waiting on another worker's refresh looks for its answer.
_CLAIM_POLL_S = 0.05


class TokenManager:
    """Hands out fresh access tokens: refreshed ahead of expiry and at least once a day."""

    def __init__(
        self,
        store: TokenStore,
        oauth: OAuthClient,
        *,
        clock: Callable[[], datetime],
        refresh_margin: timedelta,
        max_token_age: timedelta,
        claim_lease: timedelta,
    ) -> None:
        self._store = store
        self._oauth = oauth
        self._clock = clock
        self._margin = refresh_margin
        self._max_age = max_token_age
        self._lease = claim_lease
        self._locks: dict[str, asyncio.Lock] = {}
        self._cache: dict[str, CurrentTokens] = {}
        self._loading: dict[str, asyncio.Task[CurrentTokens]] = {}

    def forget(self, tenant: str) -> None:
        """Drops the cached tokens (after a disconnect or reconnect), and any reading of them
        under way (what it reads is not cached)."""
        self._cache.pop(tenant, None)
        self._loading.pop(tenant, None)

    async def access(self, tenant: str, deadline: float | None) -> CurrentTokens:
        """Tokens to call Fortnox with now, refreshing first when they are due."""
        tokens = self._cache.get(tenant)
        if tokens is None:
            tokens = await self._load(tenant)
        if not self._due(tokens):
            return tokens
        return await self._refresh(tenant, tokens.generation, deadline)

    async def _load(self, tenant: str) -> CurrentTokens:
        """The stored tokens, read once for every caller that finds none cached meanwhile: a
        burst of a tenant's calls is one read of the store, not one each. Shielded, so one
        caller giving up does not fail the others."""
        loading = self._loading.get(tenant)
        if loading is None:
            loading = asyncio.ensure_future(self._store.current_tokens(tenant))
            self._loading[tenant] = loading
            loading.add_done_callback(lambda done: self._loaded(tenant, done))
        return await asyncio.shield(loading)

    def _loaded(self, tenant: str, done: asyncio.Task[CurrentTokens]) -> None:
        """Caches what a reading found, unless it was forgotten (or dropped) meanwhile."""
        found = not done.cancelled() and done.exception() is None
        if self._loading.get(tenant) is done:
            del self._loading[tenant]
            if found:
                self._cache.setdefault(tenant, done.result())

    async def rejected(self, tenant: str, generation: int, deadline: float | None) -> None:
        """Fortnox refused the access token of ``generation``: get a newer one."""
        self.forget(tenant)
        tokens = await self._store.current_tokens(tenant)
        if tokens.generation != generation:
            self._cache[tenant] = tokens
            return
        await self._refresh(tenant, generation, deadline, forced=True)

    async def stale_refresh_tokens(self, issued_before: datetime, limit: int) -> list[str]:
        """Connected user connections whose refresh token is older than ``issued_before``."""
        return await self._store.stale_refresh_tokens(issued_before, limit)

    async def renew(self, tenant: str, issued_before: datetime) -> bool:
        """The keep-alive's renewal: spends the tenant's refresh token unless it was renewed
        at or after ``issued_before`` (then ``False``, nothing is sent)."""
        tokens = await self._store.current_tokens(tenant)
        if tokens.last_refreshed_at >= issued_before:
            return False
        renewed = await self._refresh(tenant, tokens.generation, None, forced=True)
        return renewed.generation == tokens.generation + 1

    def _due(self, tokens: CurrentTokens) -> bool:
        now = self._clock()
        return (
            tokens.access_expires_at - self._margin <= now
            or tokens.last_refreshed_at + self._max_age <= now
        )

    async def _refresh(
        self, tenant: str, stale: int, deadline: float | None, *, forced: bool = False
    ) -> CurrentTokens:
        lock = self._locks.setdefault(tenant, asyncio.Lock())
        async with lock:
            cached = self._cache.get(tenant)
            if cached is not None and cached.generation != stale and not self._due(cached):
                return cached
            while True:
                claim = await self._claim(tenant, stale, deadline)
                if claim.outcome is ClaimOutcome.REFRESHED_ELSEWHERE:
                    self._cache[tenant] = claim.tokens
                    return claim.tokens
                metrics.claim_taken(ClaimKind.TOKEN_REFRESH)
                if claim.took_over:
                    metrics.lease_taken_over(ClaimKind.TOKEN_REFRESH)
                try:
                    tokens = await self._spend(tenant, claim, deadline)
                except ClaimLost:
                    # Taken over while this worker waited: the winner's tokens are read next.
                    log.warning("fortnox token claim lost to another worker; reading its tokens",
                                extra={"tenant": tenant})
                    continue
                finally:
                    metrics.claim_released(ClaimKind.TOKEN_REFRESH)
                break
            self._cache[tenant] = tokens
            log.info(
                "fortnox tokens refreshed",
                extra={"tenant": tenant, "generation": tokens.generation, "forced": forced},
            )
            return tokens

    async def _claim(self, tenant: str, stale: int, deadline: float | None) -> RefreshClaim:
        """A claim on ``stale``'s renewal, or the newer tokens; waits while another worker
        holds a live claim (its lease judged by the database's clock)."""
        while True:
            claim = await self._store.claim_refresh(tenant, stale, self._lease)
            if claim.outcome is not ClaimOutcome.BUSY:
                return claim
            if deadline is not None and time.monotonic() + _CLAIM_POLL_S >= deadline:
                raise FortnoxUnavailable(
                    "Another worker is refreshing the Fortnox tokens; try again.",
                    metadata={"tenant": tenant},
                )
            await asyncio.sleep(_CLAIM_POLL_S)

    @metrics.counts_token_refreshes
    async def _spend(
        self, tenant: str, claim: RefreshClaim, deadline: float | None
    ) -> CurrentTokens:
        old, claim_id = claim.tokens, claim.claim_id

        async def prove() -> None:
            """Right before a request leaves: the claim is still ours (else ``ClaimLost``,
            and nothing is sent), and its lease runs from now."""
            await self._store.hold_claim(tenant, old.generation, claim_id, self._lease)

        if old.account_type is AccountType.SERVICE or old.refresh_token is None:
            grant = await self._client_credentials(tenant, old, claim_id, deadline, prove)
            return await self._store.complete_refresh(tenant, old.generation, claim_id, grant)
        lost = False  # an earlier asking's answer was lost
        while True:
            try:
                grant = await self._oauth.refresh(old.refresh_token, deadline, prove)
                break
            except RefreshNotSent:
                await self._store.release_claim(tenant, old.generation, claim_id)
                raise
            except GrantAnswerLost:
                if lost:  # lost twice: the claim's lease settles it
                    raise
                # Fortnox may have spent the token, or never seen it. Asking again with it
                # tells which: a new pair, or invalid_grant (the pair it made is out of reach).
                lost = True
                log.warning("fortnox refresh answer lost; asking again", extra={"tenant": tenant})
            except OAuthRefusal as refusal:
                if refusal.error != "invalid_grant":
                    await self._store.release_claim(tenant, old.generation, claim_id)
                    raise FortnoxAuthRejected(
                        "Fortnox refused to refresh the tokens.",
                        metadata={"oauth_error": refusal.error},
                    ) from None
                await self._require_reconnect(
                    tenant, old, claim_id, LOST_ANSWER_REASON if lost else INVALID_GRANT_REASON)
        # Shielded: a caller that goes away must not take the only new refresh token with it.
        return await asyncio.shield(self._keep(tenant, old.generation, claim_id, grant))

    async def _keep(
        self, tenant: str, generation: int, claim_id: str, grant: TokenGrant
    ) -> CurrentTokens:
        """Stores a rotated pair. Fortnox has spent the old refresh token, so the new one is
        the connection's only future: a storage fault is waited out while the claim lasts."""
        give_up = time.monotonic() + self._lease.total_seconds()
        while True:
            try:
                return await self._store.complete_refresh(tenant, generation, claim_id, grant)
            except ClaimLost:
                log.error("fortnox tokens renewed under a claim another worker took over;"
                          " the new pair is not stored", extra={"tenant": tenant})
                raise
            except StorageUnavailable:
                if time.monotonic() + KEEP_RETRY_S >= give_up:
                    raise
                log.warning("storing the rotated fortnox tokens failed; trying again",
                            extra={"tenant": tenant})
                await asyncio.sleep(KEEP_RETRY_S)

    async def _client_credentials(
        self, tenant: str, old: CurrentTokens, claim_id: str, deadline: float | None,
        prove: BeforeSend,
    ) -> TokenGrant:
        """A service account's new access token. Asking spends nothing, so any failure gives
        the claim back; ``invalid_grant`` means the customer revoked the consent."""
        try:
            return await self._oauth.client_credentials(old.fortnox_tenant_id, deadline, prove)
        except OAuthRefusal as refusal:
            if refusal.error == "invalid_grant":
                await self._store.consent_revoked(
                    tenant, old.generation, claim_id, CONSENT_REVOKED_REASON)
                self.forget(tenant)
                log.warning("fortnox service-account consent revoked", extra={"tenant": tenant})
                raise ConnectionRevoked(
                    "The customer revoked the service-account consent in Fortnox; connect"
                    " again.", metadata={"state_reason": CONSENT_REVOKED_REASON,
                                         "oauth_error": refusal.error}) from None
            await self._store.release_claim(tenant, old.generation, claim_id)
            raise FortnoxAuthRejected(
                "Fortnox refused a token for the service account.",
                metadata={"oauth_error": refusal.error},
            ) from None
        except ClaimLost:
            raise
        except BaseException:
            await self._store.release_claim(tenant, old.generation, claim_id)
            raise

    async def _require_reconnect(
        self, tenant: str, old: CurrentTokens, claim_id: str, reason: str
    ) -> NoReturn:
        await self._store.require_reconnect(tenant, old.generation, claim_id, reason)
        self.forget(tenant)
        log.warning("fortnox refresh token refused; reconnect required", extra={"tenant": tenant})
        raise ReconnectRequired(
            "The tenant must connect to Fortnox again.",
            metadata={"state_reason": reason, "oauth_error": "invalid_grant"},
        ) from None
