"""The core's ``FortnoxOAuth`` port: Fortnox's login and token endpoint (``oauth.py``) and the
company a fresh token reaches (``transport.py``), over HTTP; what a connection may become is
``core.connecting``'s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from adapters.fortnox import parse
from adapters.fortnox.errors import malformed
from adapters.fortnox.jwt_claims import jwt_tenant_id
from adapters.fortnox.limiter import SlidingWindowLimiter
from adapters.fortnox.oauth import OAuthClient
from adapters.fortnox.tokens import TokenManager
from adapters.fortnox.transport import Transport
from core.token_store import CompanyLink, TokenGrant


class FortnoxLogin:
    """Implements ``core.connecting.FortnoxOAuth``."""

    def __init__(
        self,
        oauth: OAuthClient,
        tokens: TokenManager,
        transport: Transport,
        *,
        state_lifetime: timedelta,
        limiter: SlidingWindowLimiter | None = None,
    ) -> None:
        """``limiter`` is charged for a company look-up whose token named no company (the
        look-up then went out under the tenant's window)."""
        self._oauth = oauth
        self._tokens = tokens
        self._transport = transport
        self._state_lifetime = state_lifetime
        self._limiter = limiter

    @property
    def state_lifetime(self) -> timedelta:
        return self._state_lifetime

    def authorization_url(
        self, redirect_uri: str, scopes: Sequence[str], state: str, *, service: bool = False
    ) -> str:
        return self._oauth.authorization_url(redirect_uri, scopes, state, service=service)

    async def exchange_code(
        self, code: str, redirect_uri: str, deadline: float | None
    ) -> TokenGrant:
        return await self._oauth.exchange_code(code, redirect_uri, deadline)

    async def revoke(self, refresh_token: str, deadline: float | None) -> bool:
        return await self._oauth.revoke(refresh_token, deadline)

    def forget_tokens(self, tenant: str) -> None:
        self._tokens.forget(tenant)

    async def company(self, tenant: str, grant: TokenGrant, deadline: float | None
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
