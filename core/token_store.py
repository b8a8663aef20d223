"""The port where the Fortnox adapter keeps connections, their tokens and the OAuth states.

Only the Fortnox adapter uses it (tokens never reach the use cases); it lives in the core so
that every storage backend implements the same contract without importing the adapter.

Refresh tokens rotate and each works once, so presenting one is claimed before it is sent:
``claim_refresh`` marks the current generation used in one transaction, and whoever finds it
already claimed waits for the new generation instead of sending the token a second time,
whatever process it runs in. A claim older than the lease belongs to a worker that died; it
may be taken over.

Every method may raise ``StorageUnavailable`` when the database cannot be reached.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from core.connections import Connection, ImportKind


@dataclass(frozen=True)
class OAuthStateRecord:
    """A pending authorization: who started it, where Fortnox sends the code back."""

    state: str
    tenant: str
    redirect_uri: str
    scopes: tuple[str, ...]
    expected_organisation_number: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class TokenGrant:
    """A token pair as the token endpoint issued it."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    scopes: tuple[str, ...]
    access_expires_at: datetime
    refresh_expires_at: datetime


@dataclass(frozen=True)
class CompanyLink:
    """Which Fortnox company a connection reaches."""

    fortnox_tenant_id: str
    company_name: str
    organisation_number: str


@dataclass(frozen=True)
class CurrentTokens:
    """The tenant's usable token pair and its generation (bumped by every rotation)."""

    tenant: str
    generation: int
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: datetime
    refresh_expires_at: datetime
    last_refreshed_at: datetime


class ClaimOutcome(enum.Enum):
    """What ``claim_refresh`` found."""

    CLAIMED = "claimed"  # the caller must refresh now, with ``tokens.refresh_token``
    REFRESHED_ELSEWHERE = "refreshed"  # a newer generation exists: use ``tokens``
    BUSY = "busy"  # another worker holds a live claim: wait and look again


@dataclass(frozen=True)
class RefreshClaim:
    """The outcome of a claim and the tokens it concerns."""

    outcome: ClaimOutcome
    tokens: CurrentTokens


class TokenStore(Protocol):
    """Connections, tokens (encrypted at rest by the implementation) and OAuth states."""

    async def create_state(self, record: OAuthStateRecord) -> None:
        """Stores a new pending authorization."""
        ...

    async def consume_state(self, state: str, now: datetime) -> OAuthStateRecord:
        """Marks a state used and returns it; ``OAuthStateInvalid`` if unknown, used, expired."""
        ...

    async def purge_expired_states(self, now: datetime) -> int:
        """Deletes the states that expired before ``now`` (used or not); returns how many."""
        ...

    async def save_connection(
        self, tenant: str, grant: TokenGrant, link: CompanyLink, now: datetime
    ) -> Connection:
        """Stores a fresh connection (a reconnect replaces the old tokens for good)."""
        ...

    async def connection(self, tenant: str) -> Connection | None:
        """The tenant's connection, or ``None`` if it never connected."""
        ...

    async def current_tokens(self, tenant: str) -> CurrentTokens:
        """The usable tokens; ``ConnectionNotFound``, ``ConnectionRevoked`` or
        ``ReconnectRequired`` when there are none."""
        ...

    async def claim_refresh(
        self, tenant: str, stale_generation: int, now: datetime, lease: timedelta
    ) -> RefreshClaim:
        """Claims the right to spend the refresh token of ``stale_generation`` (see module)."""
        ...

    async def release_claim(self, tenant: str, generation: int) -> None:
        """Gives a claim back when its refresh request certainly never reached Fortnox."""
        ...

    async def complete_refresh(
        self, tenant: str, generation: int, grant: TokenGrant, now: datetime
    ) -> CurrentTokens:
        """Stores the rotated pair as ``generation + 1``, the old token marked used."""
        ...

    async def require_reconnect(
        self, tenant: str, generation: int, reason: str, now: datetime
    ) -> None:
        """Fortnox refused the refresh token of ``generation``: the customer must log in."""
        ...

    async def refresh_token_for_revocation(self, tenant: str) -> str | None:
        """The stored refresh token whatever the state (to revoke it), or ``None``."""
        ...

    async def revoke(self, tenant: str, reason: str, now: datetime) -> Connection:
        """Deletes the tokens and marks the connection ``REVOKED``; ``ConnectionNotFound`` if
        the tenant never connected."""
        ...

    async def record_import(self, tenant: str, kind: ImportKind, at: datetime) -> None:
        """Remembers the time of the last successful import of ``kind``."""
        ...
