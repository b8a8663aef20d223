"""Fortnox's OAuth2 endpoints: authorization URL, code exchange, refresh, client credentials
(service accounts), revoke. What an error sent back to the redirect URI means is
``core.connecting``'s.

Codes and refresh tokens are single use, so a token request is a write to ``retry.decide``:
repeated only when it certainly never left (connection refused); any other failure is
reported, never retried blindly. Each request ends within the attempt's time, its answer
read within a small bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

import httpx
from opentelemetry import trace

from adapters.fortnox import bodies, tracing
from adapters.fortnox.errors import (
    AnswerTimedOut,
    OAuthRefusal,
    grant_answer_error,
    grant_request_error,
)
from adapters.fortnox.retry import Retries, RetryPolicy, remaining_s
from core.errors import CodeExchangeRefused, FortnoxAuthRejected
from core.token_store import TokenGrant

log = logging.getLogger(__name__)

#: Awaited right before each token request leaves: it raises to stop the request (the
#: worker proves its claim in the database and renews it).
BeforeSend = Callable[[], Awaitable[None]]


class OAuthClient:
    """Talks to ``{auth_base_url}/auth``, ``/token`` and ``/revoke`` with HTTP Basic."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        auth_base_url: str,
        client_id: str,
        client_secret: str,
        tracer: trace.Tracer,
        retry: RetryPolicy,
        timeout_s: float,
        clock: Callable[[], datetime],
        refresh_token_lifetime: timedelta,
    ) -> None:
        self._http = http
        self._base = auth_base_url.rstrip("/")
        self._client_id = client_id
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self._tracer = tracer
        self._retry = retry
        self._timeout_s = timeout_s
        self._clock = clock
        self._refresh_lifetime = refresh_token_lifetime
        self._server = urlsplit(self._base).hostname or ""
        self._path = urlsplit(self._base).path

    def authorization_url(
        self, redirect_uri: str, scopes: Sequence[str], state: str, *, service: bool = False
    ) -> str:
        """Where the customer's browser logs in and consents (offline access: a refresh token;
        ``service``: a service-account consent, which only a system administrator may give)."""
        params = {
            "client_id": self._client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "access_type": "offline",
            "response_type": "code",
        }
        if service:
            params["account_type"] = "service"
        return f"{self._base}/auth?{urlencode(params)}"

    async def exchange_code(
        self, code: str, redirect_uri: str, deadline: float | None
    ) -> TokenGrant:
        """The first token pair of a new connection; ``CodeExchangeRefused`` on refusal."""
        try:
            return await self._grant(
                {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
                deadline,
            )
        except OAuthRefusal as refusal:
            if refusal.error == "invalid_client":
                raise _client_rejected(refusal) from None
            raise CodeExchangeRefused(
                "Fortnox refused the authorization code.",
                metadata={"oauth_error": refusal.error},
            ) from None

    async def refresh(self, refresh_token: str, deadline: float | None,
                      before_send: BeforeSend | None = None) -> TokenGrant:
        """A rotated pair; raises ``OAuthRefusal`` (e.g. ``invalid_grant``) as is."""
        try:
            return await self._grant(
                {"grant_type": "refresh_token", "refresh_token": refresh_token}, deadline,
                before_send=before_send,
            )
        except OAuthRefusal as refusal:
            if refusal.error == "invalid_client":
                raise _client_rejected(refusal) from None
            raise

    async def client_credentials(self, fortnox_tenant_id: str, deadline: float | None,
                                 before_send: BeforeSend | None = None) -> TokenGrant:
        """A service account's access token for one company (``TenantId``); raises
        ``OAuthRefusal`` (``invalid_grant`` once the consent is revoked) as is."""
        try:
            return await self._grant({"grant_type": "client_credentials"}, deadline,
                                     headers={"TenantId": fortnox_tenant_id},
                                     before_send=before_send)
        except OAuthRefusal as refusal:
            if refusal.error == "invalid_client":
                raise _client_rejected(refusal) from None
            raise

    async def revoke(self, refresh_token: str, deadline: float | None) -> bool:
        """Revokes the grant behind a refresh token; ``False`` if Fortnox could not be told."""
        with self._span("revoke", "revoke") as span:
            try:
                response, body = await self._post(
                    "revoke", {"token": refresh_token, "token_type_hint": "refresh_token"},
                    None, deadline)
            except httpx.TransportError as exc:
                log.warning("fortnox revoke failed: %s", type(exc).__name__)
                return False
            span.set_attribute(tracing.STATUS, response.status_code)
            return response.is_success and _revoked(body)

    async def _grant(self, form: dict[str, str], deadline: float | None,
                     headers: dict[str, str] | None = None,
                     before_send: BeforeSend | None = None) -> TokenGrant:
        """Asks the token endpoint, again only while the request certainly never left;
        ``before_send`` runs right before each asking (after any back-off)."""
        with self._span("token", form["grant_type"]) as span:
            retries = Retries(self._retry, span, method="POST", route=f"{self._path}/token",
                              idempotent=False, until=deadline)
            while True:
                if before_send is not None:
                    await before_send()
                try:
                    response, body = await self._post("token", form, headers, deadline)
                except httpx.TransportError as exc:
                    stop = await retries.again(exc)
                    if stop is not None:
                        raise grant_request_error(
                            exc, outcome_unknown=stop.outcome_unknown) from None
                    continue
                span.set_attribute(tracing.STATUS, response.status_code)
                return self._parse_grant(response, body)

    async def _post(self, endpoint: str, form: dict[str, str], headers: dict[str, str] | None,
                    deadline: float | None) -> tuple[httpx.Response, bytes]:
        """One request and its answer, read whole within the attempt's time (not only each
        read's) and ``bodies.SHORT_BODY_BYTES``; ``AnswerTimedOut`` when the time ran out."""
        timeout = remaining_s(deadline, self._timeout_s)
        request = self._http.build_request("POST", f"{self._base}/{endpoint}", data=form,
                                           headers=headers, timeout=timeout)
        try:
            async with asyncio.timeout(timeout):
                response = await self._http.send(request, auth=self._auth, stream=True)
                try:
                    return response, await bodies.read_short(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise AnswerTimedOut("the answer did not arrive within the attempt's time"
                                 ) from None

    def _parse_grant(self, response: httpx.Response, content: bytes) -> TokenGrant:
        try:
            body = json.loads(content)
        except (ValueError, RecursionError):
            body = None
        if (not response.is_success or not isinstance(body, dict)
                or not isinstance(body.get("access_token"), str) or not body["access_token"]):
            raise grant_answer_error(response, body)
        try:
            expires_in = int(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            raise grant_answer_error(response, None) from None
        now = self._clock()
        refresh_token = body.get("refresh_token")  # none for a service account
        return TokenGrant(
            access_token=str(body["access_token"]),
            refresh_token=None if refresh_token is None else str(refresh_token),
            scopes=tuple(str(body.get("scope", "")).split()),
            access_expires_at=now + timedelta(seconds=expires_in),
            refresh_expires_at=None if refresh_token is None else now + self._refresh_lifetime,
        )

    def _span(self, endpoint: str, grant_type: str) -> AbstractContextManager[trace.Span]:
        return self._tracer.start_as_current_span(
            f"POST {self._path}/{endpoint}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                tracing.METHOD: "POST",
                tracing.ROUTE: f"{self._path}/{endpoint}",
                tracing.SERVER: self._server,
                tracing.GRANT_TYPE: grant_type,
            },
        )


def _revoked(content: bytes) -> bool:
    """Fortnox answers a revoke with ``{"revoked": true|false}``: only ``true`` is done."""
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):
        return False
    return isinstance(body, dict) and body.get("revoked") is True


def _client_rejected(refusal: OAuthRefusal) -> FortnoxAuthRejected:
    return FortnoxAuthRejected(
        "Fortnox rejected the integration's client credentials.",
        metadata={"oauth_error": refusal.error},
    )
