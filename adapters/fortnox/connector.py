"""The core's ``FortnoxConnections``: connect (OAuth), inspect, list and disconnect tenants.

A tenant already connected keeps its connection until a new login completes; only then is it
replaced (the old refresh token revoked at Fortnox), so a failed move changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from adapters.fortnox import parse
from adapters.fortnox.errors import malformed
from adapters.fortnox.jwt_claims import jwt_tenant_id
from adapters.fortnox.limiter import SlidingWindowLimiter
from adapters.fortnox.oauth import OAuthClient, consent_refused
from adapters.fortnox.tokens import TokenManager
from adapters.fortnox.transport import Transport
from core.connections import (
    AccountType,
    AuthorizationRequest,
    Connection,
    ConnectionFilter,
    ConnectionPage,
    same_organisation,
)
from core.errors import (
    CodeExchangeRefused,
    ConnectionNotFound,
    FieldViolation,
    InvalidRequest,
    WrongFortnoxCompany,
)
from core.imports import ImportKind
from core.token_store import CompanyLink, OAuthStateRecord, TokenGrant, TokenStore

log = logging.getLogger(__name__)

DISCONNECTED_REASON = "Disconnected on request; the tokens were revoked at Fortnox."
DISCONNECTED_UNCONFIRMED = "Disconnected on request; Fortnox did not confirm the revocation."
DISCONNECTED_SERVICE = (
    "Disconnected on request; the token is deleted here, and the service-account consent"
    " stays in Fortnox until the customer removes the integration there."
)




class FortnoxConnector:
    """Implements ``core.connections.FortnoxConnections``."""

    def __init__(
        self,
        store: TokenStore,
        oauth: OAuthClient,
        tokens: TokenManager,
        transport: Transport,
        *,
        default_scopes: Sequence[str],
        allowed_redirect_uris: Sequence[str],
        clock: Callable[[], datetime],
        state_ttl: timedelta,
        limiter: SlidingWindowLimiter | None = None,
    ) -> None:
        """``limiter`` is charged for a company look-up whose token named no company (the
        look-up then went out under the tenant's window)."""
        self._store = store
        self._limiter = limiter
        self._oauth = oauth
        self._tokens = tokens
        self._transport = transport
        self._default_scopes = tuple(default_scopes)
        self._redirect_uris = tuple(allowed_redirect_uris)
        self._clock = clock
        self._state_ttl = state_ttl

    async def begin_connect(
        self,
        tenant: str,
        redirect_uri: str,
        scopes: Sequence[str] = (),
        expected_organisation_number: str = "",
        account_type: AccountType = AccountType.USER,
    ) -> AuthorizationRequest:
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
            expires_at=now + self._state_ttl,
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
            link = await self._company(record.tenant, grant, deadline)
            self._check_company(record, link)
        except BaseException:
            if grant.refresh_token is not None:
                await self._oauth.revoke(grant.refresh_token, deadline)
            raise
        replaced = await self._store.refresh_token_for_revocation(record.tenant)
        connection = await self._store.save_connection(
            record.tenant, grant, link, record.account_type, record.state, self._clock())
        self._tokens.forget(record.tenant)
        if replaced is not None:  # a reconnect or a move: the old grant must not linger
            await self._oauth.revoke(replaced, deadline)
        log.info("fortnox connected", extra={
            "tenant": record.tenant, "fortnox_tenant_id": link.fortnox_tenant_id,
            "account_type": record.account_type.value, "replaced": replaced is not None})
        return connection

    @staticmethod
    def _check_company(record: OAuthStateRecord, link: CompanyLink) -> None:
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

    async def _company(
        self, tenant: str, grant: TokenGrant, deadline: float | None
    ) -> CompanyLink:
        data = await self._transport.get_json(
            tenant, "/companyinformation", deadline=deadline, access_token=grant.access_token)
        try:
            company = parse.record(data, "CompanyInformation", parse.company_information)
        except parse.ShapeError as exc:
            raise malformed(self._transport.template("/companyinformation"), str(exc)) from None
        tenant_id = jwt_tenant_id(grant.access_token)  # the window the look-up counted in
        if not tenant_id and company.database_number is not None:
            tenant_id = str(company.database_number)
            if self._limiter is not None:  # known only now: the look-up counts in its window
                await (await self._limiter.acquire(tenant_id)).done()
        return CompanyLink(
            fortnox_tenant_id=tenant_id,
            company_name=company.company_name,
            organisation_number=company.organisation_number,
        )

    async def get_connection(self, tenant: str) -> Connection:
        connection = await self._store.connection(tenant)
        if connection is None:
            raise ConnectionNotFound("The tenant is not connected to Fortnox.")
        return connection

    async def list_connections(
        self, which: ConnectionFilter, page_size: int, after: str | None
    ) -> ConnectionPage:
        return await self._store.list_connections(which, page_size, after)

    async def disconnect(self, tenant: str, *, deadline: float | None = None) -> Connection:
        current = await self.get_connection(tenant)
        token = await self._store.refresh_token_for_revocation(tenant)
        confirmed = token is not None and await self._oauth.revoke(token, deadline)
        if current.account_type is AccountType.SERVICE:
            reason = DISCONNECTED_SERVICE
        else:
            reason = DISCONNECTED_REASON if confirmed or token is None else DISCONNECTED_UNCONFIRMED
        connection = await self._store.revoke(tenant, reason, self._clock())
        self._tokens.forget(tenant)
        log.info("fortnox disconnected", extra={"tenant": tenant, "confirmed": confirmed})
        return connection

    async def record_import(self, tenant: str, kind: ImportKind, at: datetime) -> None:
        await self._store.record_import(tenant, kind, at)
