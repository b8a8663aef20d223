"""The port where connections, their tokens and the OAuth states are kept.

``core.connecting`` spends the states and stores, replaces and revokes connections through it;
the Fortnox adapter's token machinery reads and renews the tokens; the other use cases read a
connection through its ``core.connections.ConnectionRecords`` side, which holds no token. It
lives in the core so that every storage backend implements the same contract without
importing the adapter.

Refresh tokens rotate and each works once, so presenting one is claimed before it is sent:
``claim_refresh`` marks the current generation used in one transaction, and whoever finds it
already claimed waits for the new generation instead of sending the token a second time,
whatever process it runs in. A claim whose lease ran out belongs to a worker that died or
hung; it may be taken over. Leases are dated by the database's clock, never a replica's, so
a replica whose clock is fast does not take over a claim that is still alive.

Each claim carries a fencing token (``claim_id``) that a take-over replaces: right before its
grant request leaves, the worker proves it still holds the claim (``hold_claim``, which also
renews the lease), and every write that settles the claim checks it. A worker whose claim was
taken over meets ``ClaimLost``: it sends nothing more, writes nothing, and reads what the
winner stored.

A service account has no refresh token: its generations are claimed the same way, so one
worker at a time asks for a client-credentials token, but a claim whose request failed is
always given back (asking again spends nothing).

Every method may raise ``StorageUnavailable`` when the database cannot be reached.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from core.connections import (
    AccountType,
    Connection,
    ConnectionFilter,
    ConnectionPage,
    ConnectionState,
)
from core.errors import (
    ConnectionNotFound,
    ConnectionRevoked,
    OAuthStateInvalid,
    ReconnectRequired,
)
from core.imports import ImportKind


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
    account_type: AccountType = AccountType.USER


@dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint issued: an access token, and a refresh token unless it was a
    service account's."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    scopes: tuple[str, ...]
    access_expires_at: datetime
    refresh_expires_at: datetime | None


@dataclass(frozen=True)
class CompanyLink:
    """Which Fortnox company a connection reaches."""

    fortnox_tenant_id: str
    company_name: str
    organisation_number: str


@dataclass(frozen=True)
class CurrentTokens:
    """The tenant's usable tokens and their generation (bumped by every renewal); a service
    account has no refresh token and is renewed for ``fortnox_tenant_id``."""

    tenant: str
    generation: int
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    access_expires_at: datetime
    refresh_expires_at: datetime | None
    last_refreshed_at: datetime
    account_type: AccountType = AccountType.USER
    #: The Fortnox company the tokens reach: Fortnox's rate limit is per company.
    fortnox_tenant_id: str = ""


def require_usable(state: str | None, state_reason: str) -> None:
    """Raises what a call meets on a connection whose tokens cannot be used (``state`` as
    stored, ``None`` when there is no connection): one rule for every store."""
    if state is None:
        raise ConnectionNotFound("The tenant is not connected to Fortnox.")
    if ConnectionState(state) is ConnectionState.REVOKED:
        raise ConnectionRevoked("The tenant's Fortnox connection was disconnected.")
    if ConnectionState(state) is ConnectionState.RECONNECT_REQUIRED:
        raise ReconnectRequired(
            "The tenant must connect to Fortnox again.", metadata={"state_reason": state_reason}
        )


#: The ``outcome`` a store records for a state whose completion stored a connection.
STATE_CONNECTED = "connected"


def require_unused_state(used: bool, outcome: str) -> None:
    """Raises what a second completion with a state meets: plainly used when the first one
    connected, else that nothing was connected and Connect must start again (the code is
    spent). One rule for every store."""
    if used and outcome == STATE_CONNECTED:
        raise OAuthStateInvalid("The OAuth state was already used.", reason="OAUTH_STATE_USED")
    if used:
        raise OAuthStateInvalid(
            "An earlier CompleteConnect with this state made no connection; the"
            " authorization code is spent, so start Connect again.",
            reason="OAUTH_CONNECT_NOT_COMPLETED",
            metadata={"earlier_outcome": outcome or "UNKNOWN"})


class ClaimOutcome(enum.Enum):
    """What ``claim_refresh`` found."""

    CLAIMED = "claimed"  # the caller must refresh now, with ``tokens.refresh_token``
    REFRESHED_ELSEWHERE = "refreshed"  # a newer generation exists: use ``tokens``
    BUSY = "busy"  # another worker holds a live claim: wait and look again


@dataclass(frozen=True)
class RefreshClaim:
    """The outcome of a claim and the tokens it concerns; a ``CLAIMED`` one carries its
    fencing token, and says whether it replaced a holder whose lease had run out."""

    outcome: ClaimOutcome
    tokens: CurrentTokens
    claim_id: str = ""
    took_over: bool = False


class ClaimLost(Exception):
    """The worker no longer holds its claim: a take-over replaced it (its lease ran out by the
    database's clock), or the connection moved on. It must send and write nothing more."""


class TokenStore(Protocol):
    """Connections, tokens (encrypted at rest by the implementation) and OAuth states."""

    async def create_state(self, record: OAuthStateRecord) -> None:
        """Stores a new pending authorization."""
        ...

    async def consume_state(self, state: str, now: datetime) -> OAuthStateRecord:
        """Marks a state used and returns it; ``OAuthStateInvalid`` if unknown, expired, used
        by a completion that connected (``OAUTH_STATE_USED``) or by one that did not
        (``OAUTH_CONNECT_NOT_COMPLETED``, with the recorded outcome)."""
        ...

    async def fail_state(self, state: str, outcome: str) -> None:
        """Records why the completion that used ``state`` made no connection."""
        ...

    async def purge_expired_states(self, now: datetime) -> int:
        """Deletes the states that expired before ``now`` (used or not); returns how many."""
        ...

    async def save_connection(
        self, tenant: str, grant: TokenGrant, link: CompanyLink, account_type: AccountType,
        state: str, now: datetime,
    ) -> Connection:
        """Stores a fresh connection and marks ``state`` as having connected, in one
        transaction (a reconnect replaces the old tokens for good; the history stays)."""
        ...

    async def list_connections(
        self, which: ConnectionFilter, limit: int, after: str | None
    ) -> ConnectionPage:
        """Up to ``limit`` connections matching ``which`` with tenants after ``after``."""
        ...

    async def stale_refresh_tokens(self, issued_before: datetime, limit: int) -> list[str]:
        """Connected user connections whose refresh token was issued before that, oldest
        first."""
        ...

    async def connection(self, tenant: str) -> Connection | None:
        """The tenant's connection, or ``None`` if it never connected."""
        ...

    async def current_tokens(self, tenant: str) -> CurrentTokens:
        """The usable tokens; ``ConnectionNotFound``, ``ConnectionRevoked`` or
        ``ReconnectRequired`` when there are none."""
        ...

    async def claim_refresh(
        self, tenant: str, stale_generation: int, lease: timedelta
    ) -> RefreshClaim:
        """Claims the right to spend the refresh token of ``stale_generation`` until the
        database's clock passes ``lease`` from now (see module)."""
        ...

    async def hold_claim(
        self, tenant: str, generation: int, claim_id: str, lease: timedelta
    ) -> None:
        """Proves the claim is still this worker's and renews its lease from the database's
        now; ``ClaimLost`` if a take-over replaced it or the connection moved on."""
        ...

    async def release_claim(self, tenant: str, generation: int, claim_id: str) -> None:
        """Gives a claim back when its refresh request certainly never reached Fortnox (a
        claim that is no longer this worker's stays as it is)."""
        ...

    async def complete_refresh(
        self, tenant: str, generation: int, claim_id: str, grant: TokenGrant
    ) -> CurrentTokens:
        """Stores the rotated pair as ``generation + 1``, the old token marked used, dated by
        the database's clock; ``ClaimLost`` (nothing written) if the claim is not this
        worker's any more."""
        ...

    async def require_reconnect(
        self, tenant: str, generation: int, claim_id: str, reason: str
    ) -> None:
        """Fortnox refused the refresh token of ``generation``: the customer must log in
        (``ClaimLost``, nothing written, if the claim is another worker's by now)."""
        ...

    async def consent_revoked(
        self, tenant: str, generation: int, claim_id: str, reason: str
    ) -> None:
        """Fortnox says the service account's consent of ``generation`` is gone: the
        connection is ``REVOKED`` with ``reason`` and its token deleted (``ClaimLost``,
        nothing written, if the claim is another worker's by now)."""
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
