"""The connection lifecycle's ports in memory: the token store's connection and OAuth-state side,
and Fortnox's login.

``MemoryConnectionStore`` answers as the stores do (``tests/adapters/stores/test_tokens.py``
states the contract): a state is spent by ``consume_state``, which judges it with the same
core rule every store calls (``require_unused_state``: unknown, used, then expired); a saved
connection replaces the tenant's tokens and keeps its import history; ``revoke`` deletes the
tokens. ``tests/adapters/stores/test_connection_fake_agrees.py`` runs the same lifecycle over
it and over each real store and compares every answer.

``ScriptedLogin`` is Fortnox's side: each code's grant and company are set by the test, and
every revocation and forgetting is recorded.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from core.connections import (
    AccountType,
    Connection,
    ConnectionFilter,
    ConnectionPage,
    ConnectionState,
)
from core.errors import CodeExchangeRefused, ConnectionNotFound, OAuthStateInvalid
from core.token_store import (
    STATE_CONNECTED,
    CompanyLink,
    OAuthStateRecord,
    TokenGrant,
    require_unused_state,
)


@dataclass
class _State:
    record: OAuthStateRecord
    used: bool = False
    outcome: str = ""


class MemoryConnectionStore:
    """``TokenStore`` as ``core.connecting`` uses it: states, connections, their refresh
    tokens."""

    def __init__(self) -> None:
        self.states: dict[str, _State] = {}
        self.connections: dict[str, Connection] = {}
        self.refresh_tokens: dict[str, str] = {}

    async def create_state(self, record: OAuthStateRecord) -> None:
        self.states[record.state] = _State(record)

    async def consume_state(self, state: str, now: datetime) -> OAuthStateRecord:
        found = self.states.get(state)
        if found is None:
            raise OAuthStateInvalid("The OAuth state is unknown.", reason="OAUTH_STATE_UNKNOWN")
        require_unused_state(found.used, found.outcome)
        if found.record.expires_at <= now:
            raise OAuthStateInvalid("The OAuth state has expired.",
                                    reason="OAUTH_STATE_EXPIRED")
        found.used = True
        return found.record

    async def fail_state(self, state: str, outcome: str) -> None:
        self.states[state].outcome = outcome

    async def save_connection(
        self, tenant: str, grant: TokenGrant, link: CompanyLink, account_type: AccountType,
        state: str, now: datetime,
    ) -> Connection:
        old = self.connections.get(tenant)
        connection = Connection(
            tenant, ConnectionState.CONNECTED, "", grant.scopes, link.fortnox_tenant_id,
            link.company_name, link.organisation_number, now, grant.access_expires_at,
            grant.refresh_expires_at, now,
            old.last_sie_import_at if old else None, old.last_ledger_import_at if old else None,
            account_type=account_type, state_changed_at=now)
        self.connections[tenant] = connection
        self.refresh_tokens.pop(tenant, None)
        if grant.refresh_token is not None:
            self.refresh_tokens[tenant] = grant.refresh_token
        self.states[state].outcome = STATE_CONNECTED
        return connection

    async def connection(self, tenant: str) -> Connection | None:
        return self.connections.get(tenant)

    async def list_connections(
        self, which: ConnectionFilter, limit: int, after: str | None
    ) -> ConnectionPage:
        matching = [c for t, c in sorted(self.connections.items())
                    if (after is None or t > after)
                    and which.state in (None, c.state)
                    and which.account_type in (None, c.account_type)]
        page = tuple(matching[:limit])
        return ConnectionPage(page, page[-1].tenant if len(matching) > limit else None)

    async def refresh_token_for_revocation(self, tenant: str) -> str | None:
        return self.refresh_tokens.get(tenant)

    async def revoke(self, tenant: str, reason: str, now: datetime) -> Connection:
        found = self.connections.get(tenant)
        if found is None:
            raise ConnectionNotFound("The tenant is not connected to Fortnox.")
        self.refresh_tokens.pop(tenant, None)
        self.connections[tenant] = replace(
            found, state=ConnectionState.REVOKED, reason=reason, state_changed_at=now,
            access_token_expires_at=None, refresh_token_expires_at=None)
        return self.connections[tenant]


@dataclass(frozen=True)
class Company:
    """What the company look-up answers for a code's tokens."""

    organisation_number: str = "556677-8899"
    fortnox_tenant_id: str = "fnx-1"
    company_name: str = "Fake AB"


@dataclass
class ScriptedLogin:
    """``FortnoxOAuth`` whose answers the test sets: ``companies`` by code (an unknown code is
    refused as Fortnox refuses it), ``company_error`` raised by the look-up, ``revoke_answers``
    what each revocation returns (``True`` once they run out)."""

    companies: dict[str, Company] = field(default_factory=dict)
    company_error: Exception | None = None
    revoke_answers: list[bool] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    exchanged: list[str] = field(default_factory=list)
    state_lifetime: timedelta = timedelta(minutes=10)
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    def authorization_url(
        self, redirect_uri: str, scopes: Sequence[str], state: str, *, service: bool = False
    ) -> str:
        kind = "&account_type=service" if service else ""
        return f"https://fortnox.test/auth?state={state}&scope={'+'.join(scopes)}{kind}"

    async def exchange_code(
        self, code: str, redirect_uri: str, deadline: float | None
    ) -> TokenGrant:
        self.exchanged.append(code)
        if code not in self.companies:
            raise CodeExchangeRefused("Fortnox refused the authorization code.",
                                      metadata={"oauth_error": "invalid_grant"})
        n = next(self._numbers)
        issued = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        return TokenGrant(f"access-{code}-{n}", f"refresh-{code}-{n}", ("bookkeeping",),
                          issued + timedelta(hours=1), issued + timedelta(days=45))

    async def company(self, tenant: str, grant: TokenGrant, deadline: float | None
                      ) -> CompanyLink:
        if self.company_error is not None:
            raise self.company_error
        code = grant.access_token.split("-")[1]
        found = self.companies[code]
        return CompanyLink(found.fortnox_tenant_id, found.company_name,
                           found.organisation_number)

    async def revoke(self, refresh_token: str, deadline: float | None) -> bool:
        self.revoked.append(refresh_token)
        return self.revoke_answers.pop(0) if self.revoke_answers else True

    def forget_tokens(self, tenant: str) -> None:
        self.forgotten.append(tenant)
