"""Connecting a tenant to Fortnox: start a login, complete it, disconnect, read connections.

Every rule of a connection's life is here, over two ports: the token store (which keeps the
connection, its tokens and the single-use OAuth states) and ``FortnoxOAuth`` (Fortnox's login,
its token endpoint and the company look-up, over HTTP in the adapter). A tenant already
connected keeps its connection until a new login completes; only then is it replaced (the old
refresh token revoked at Fortnox), so a failed move, between companies or between a user and
a service account, changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from core.connections import (
    AccountType,
    AuthorizationRequest,
    Connection,
    ConnectionFilter,
    ConnectionPage,
    require_found,
    same_organisation,
)
from core.errors import (
    CodeExchangeRefused,
    ConsentRefused,
    FieldViolation,
    InvalidRequest,
    WrongFortnoxCompany,
)
from core.token_store import CompanyLink, OAuthStateRecord, TokenGrant, TokenStore

log = logging.getLogger(__name__)

DISCONNECTED_REASON = "Disconnected on request; the tokens were revoked at Fortnox."
DISCONNECTED_UNCONFIRMED = "Disconnected on request; Fortnox did not confirm the revocation."
DISCONNECTED_SERVICE = (
    "Disconnected on request; the token is deleted here, and the service-account consent"
    " stays in Fortnox until the customer removes the integration there."
)


class FortnoxOAuth(Protocol):
    """Fortnox's side of a login, as the connection rules need it (HTTP, and what its errors
    mean, stay in the adapter). ``deadline`` is a ``time.monotonic()`` instant: no retry
    starts after it."""

    @property
    def state_lifetime(self) -> timedelta:
        """How long a login may take: Fortnox's authorization codes live this long."""
        ...

    def authorization_url(
        self, redirect_uri: str, scopes: Sequence[str], state: str, *, service: bool = False
    ) -> str:
        """Where the customer's browser logs in and consents (``service``: a service-account
        consent)."""
        ...

    async def exchange_code(
        self, code: str, redirect_uri: str, deadline: float | None
    ) -> TokenGrant:
        """The first tokens of a new connection; ``CodeExchangeRefused`` on refusal."""
        ...

    async def company(self, tenant: str, grant: TokenGrant, deadline: float | None
                      ) -> CompanyLink:
        """The Fortnox company the fresh ``grant`` reaches."""
        ...

    async def revoke(self, refresh_token: str, deadline: float | None) -> bool:
        """Revokes the grant behind a refresh token; ``False`` if Fortnox could not be told."""
        ...

    def forget_tokens(self, tenant: str) -> None:
        """Drops whatever the adapter keeps in memory of the tenant's earlier tokens."""
        ...


class Connecting:
    """Connect (OAuth), inspect, list and disconnect tenants."""

    def __init__(
        self,
        store: TokenStore,
        oauth: FortnoxOAuth,
        *,
        default_scopes: Sequence[str],
        allowed_redirect_uris: Sequence[str],
        clock: Callable[[], datetime],
    ) -> None:
        """``clock`` dates the OAuth states (and judges their expiry) and the connections."""
        self._store = store
        self._oauth = oauth
        self._default_scopes = tuple(default_scopes)
        self._redirect_uris = tuple(allowed_redirect_uris)
        self._clock = clock

    async def begin_connect(
        self,
        tenant: str,
        redirect_uri: str,
        scopes: Sequence[str] = (),
        expected_organisation_number: str = "",
        account_type: AccountType = AccountType.USER,
    ) -> AuthorizationRequest:
        """Creates a single-use state and the authorization URL.

        Empty ``scopes`` means the configured default scopes. A redirect URI outside the
        configured list raises ``InvalidRequest``. A tenant already connected stays connected
        as it is until the new login completes.
        """
        if not tenant:
            raise InvalidRequest("A tenant is required.",
                                 violations=(FieldViolation("tenant", "must not be empty"),))
        if self._redirect_uris and redirect_uri not in self._redirect_uris:
            raise InvalidRequest(
                "The redirect URI is not one of the configured ones.",
                violations=(FieldViolation("redirect_uri", "not an allowed redirect URI"),),
            )
        now = self._clock()
        record = OAuthStateRecord(
            state=secrets.token_urlsafe(32),
            tenant=tenant,
            redirect_uri=redirect_uri,
            scopes=tuple(dict.fromkeys(scopes)) or self._default_scopes,
            expected_organisation_number=expected_organisation_number.strip(),
            created_at=now,
            expires_at=now + self._oauth.state_lifetime,
            account_type=account_type,
        )
        await self._store.create_state(record)
        url = self._oauth.authorization_url(record.redirect_uri, record.scopes, record.state,
                                            service=account_type is AccountType.SERVICE)
        return AuthorizationRequest(url=url, state=record.state, expires_at=record.expires_at)

    async def complete_connect(
        self, state: str, code: str, *, error: str = "", error_description: str = "",
        deadline: float | None = None,
    ) -> Connection:
        """Spends ``state``, exchanges ``code``, reads the company, and only then replaces the
        tenant's earlier connection (its history stays).

        Raises ``OAuthStateInvalid`` (unknown, expired, used, or used by a completion that
        made no connection), ``ConsentRefused`` when Fortnox sent ``error`` instead of a code,
        ``CodeExchangeRefused``, or ``WrongFortnoxCompany`` when an expected organisation
        number was given and differs (the fresh tokens are then revoked and nothing changes).
        """
        record = await self._store.consume_state(state, self._clock())
        try:
            if error:
                raise consent_refused(error, error_description,
                                      service=record.account_type is AccountType.SERVICE)
            return await self._connect(record, code, deadline)
        except Exception as exc:  # the state is spent: a retry must learn why nothing connected
            await self._store.fail_state(state, str(getattr(exc, "reason", type(exc).__name__)))
            raise

    async def _connect(
        self, record: OAuthStateRecord, code: str, deadline: float | None
    ) -> Connection:
        grant = await self._oauth.exchange_code(code, record.redirect_uri, deadline)
        if record.account_type is AccountType.SERVICE:
            # Fortnox answers a service-account consent's code with a refresh token too; a
            # service account renews by client credentials, so none is kept (nor revoked:
            # that could end the consent).
            grant = dataclasses.replace(grant, refresh_token=None, refresh_expires_at=None)
        try:
            link = await self._oauth.company(record.tenant, grant, deadline)
            check_company(record, link)
        except BaseException:
            if grant.refresh_token is not None:
                await self._oauth.revoke(grant.refresh_token, deadline)
            raise
        replaced = await self._store.refresh_token_for_revocation(record.tenant)
        connection = await self._store.save_connection(
            record.tenant, grant, link, record.account_type, record.state, self._clock())
        self._oauth.forget_tokens(record.tenant)
        if replaced is not None:  # a reconnect or a move: the old grant must not linger
            await self._oauth.revoke(replaced, deadline)
        log.info("fortnox connected", extra={
            "tenant": record.tenant, "fortnox_tenant_id": link.fortnox_tenant_id,
            "account_type": record.account_type.value, "replaced": replaced is not None})
        return connection

    async def get_connection(self, tenant: str) -> Connection:
        """The tenant's connection; ``ConnectionNotFound`` if it never connected."""
        return require_found(await self._store.connection(tenant))

    async def list_connections(
        self, which: ConnectionFilter, page_size: int, after: str | None
    ) -> ConnectionPage:
        """The connections matching ``which`` with tenants after ``after``, in tenant order."""
        return await self._store.list_connections(which, page_size, after)

    async def disconnect(self, tenant: str, *, deadline: float | None = None) -> Connection:
        """Revokes the refresh token at Fortnox (best effort), deletes the tokens, marks the
        connection ``REVOKED`` with a reason that says whether Fortnox confirmed it."""
        current = await self.get_connection(tenant)
        token = await self._store.refresh_token_for_revocation(tenant)
        confirmed = token is not None and await self._oauth.revoke(token, deadline)
        if current.account_type is AccountType.SERVICE:
            reason = DISCONNECTED_SERVICE
        else:
            reason = DISCONNECTED_REASON if confirmed or token is None else DISCONNECTED_UNCONFIRMED
        connection = await self._store.revoke(tenant, reason, self._clock())
        self._oauth.forget_tokens(tenant)
        log.info("fortnox disconnected", extra={"tenant": tenant, "confirmed": confirmed})
        return connection


def check_company(record: OAuthStateRecord, link: CompanyLink) -> None:
    """The login must reach the expected company, and a service account needs its id."""
    expected = record.expected_organisation_number
    if expected and not same_organisation(expected, link.organisation_number):
        raise WrongFortnoxCompany(
            "The Fortnox login belongs to another company than expected.",
            metadata={
                "expected_organisation_number": record.expected_organisation_number,
                "organisation_number": link.organisation_number,
            },
        )
    if record.account_type is AccountType.SERVICE and not link.fortnox_tenant_id:
        raise CodeExchangeRefused(
            "Fortnox did not say which company the service account is for (no TenantId).",
            reason="SERVICE_ACCOUNT_TENANT_UNKNOWN")


def consent_refused(error: str, description: str, *, service: bool) -> ConsentRefused:
    """What an ``error`` sent to the redirect URI instead of a code means for the caller.

    Fortnox's wording for a service-account consent refused to a user who is not a system
    administrator is not documented; the sandbox's mentions "administrator", and so does
    this check (Swedish "administratör" included).
    """
    if service and error == "access_denied" and "administrat" in description.lower():
        return ConsentRefused(
            "Only a system administrator of the Fortnox company can consent to a service"
            " account; ask the administrator to log in, or connect as a user instead.",
            reason="SERVICE_ACCOUNT_NOT_ADMIN", metadata={"oauth_error": error})
    return ConsentRefused(
        "The customer did not grant access in Fortnox; start Connect again.",
        metadata={"oauth_error": error[:64]})
