"""One Fortnox API call: a span around attempts, each with a token and a rate-limit slot.

Whether a failed attempt is tried again is ``retry.decide``'s call (a write only when Fortnox
certainly did not act on it); what a failure means for the caller is ``errors``'. A 401 for a
rejected token is answered by one refresh, whatever the method.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from opentelemetry import trace

from adapters import metrics
from adapters.fortnox import jsonbody, tracing
from adapters.fortnox.errors import (
    TOKEN_REJECTED_CODES,
    ErrorBody,
    attempt_error,
    parse_error_body,
    unavailable,
)
from adapters.fortnox.jwt_claims import jwt_tenant_id
from adapters.fortnox.limiter import SlidingWindowLimiter, Slot
from adapters.fortnox.retry import GiveUp, RetryPolicy, decide, remaining_s, seconds_left
from adapters.fortnox.streams import HttpByteStream
from adapters.fortnox.tokens import TokenManager
from core.errors import FortnoxRateLimited

log = logging.getLogger(__name__)

Params = Mapping[str, str | int]


class Transport:
    """Sends API requests for a tenant through the shared client, limiter and tokens."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_base_url: str,
        tokens: TokenManager,
        limiter: SlidingWindowLimiter,
        tracer: trace.Tracer,
        retry: RetryPolicy,
        timeout_s: float,
    ) -> None:
        self._http = http
        self._base = api_base_url.rstrip("/")
        self._prefix = urlsplit(self._base).path
        self._server = urlsplit(self._base).hostname or ""
        self._tokens = tokens
        self._limiter = limiter
        self._tracer = tracer
        self._retry = retry
        self._timeout_s = timeout_s

    async def get_json(
        self,
        tenant: str,
        route: str,
        path: Params | None = None,
        *,
        params: Params | None = None,
        deadline: float | None = None,
        access_token: str | None = None,
    ) -> dict[str, Any]:
        """``GET`` a JSON resource (retried as a read).

        ``access_token`` calls with that token instead of the tenant's stored one (used while
        connecting, before anything is stored).
        """
        request = self._request(tenant, "GET", route, path, params=params, deadline=deadline)
        return await self._json(request, access_token)

    async def post_json(
        self,
        tenant: str,
        route: str,
        body: Mapping[str, Any],
        *,
        params: Params | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """``POST`` a JSON body (a write: never repeated once it may have arrived)."""
        return await self._json(self._request(tenant, "POST", route, params=params, body=body,
                                              deadline=deadline))

    async def open_stream(
        self,
        tenant: str,
        route: str,
        path: Params | None = None,
        *,
        params: Params | None = None,
        deadline: float | None = None,
        default_name: str = "download",
        accept: str = "*/*",
    ) -> HttpByteStream:
        """``GET`` a file (``accept``: the media types it may come as); the answer's body is
        left unread for the caller to stream. A connection lost mid-body is retried as a read:
        the file is fetched again and continues after the bytes already delivered."""
        request = self._request(tenant, "GET", route, path, params=params, deadline=deadline,
                                stream=True, accept=accept)
        span = self._tracer.start_span(request.span_name, kind=trace.SpanKind.CLIENT,
                                       attributes=self._attributes(request))

        async def send() -> httpx.Response:
            with trace.use_span(span, end_on_exit=False):
                return await self._send(span, request)

        try:
            response = await send()
        except BaseException:
            span.end()
            raise
        return HttpByteStream(response, span, request.template, default_name, deadline,
                              reopen=send, retry=self._retry)

    async def _json(self, request: _Request, access_token: str | None = None) -> dict[str, Any]:
        with self._tracer.start_as_current_span(
            request.span_name, kind=trace.SpanKind.CLIENT, attributes=self._attributes(request),
        ) as span:
            response = await self._send(span, request, access_token)
            try:
                data = response.json()
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise unavailable(request.template, ValueError("not a JSON object"), None)
            return data

    async def _send(self, span: trace.Span, request: _Request, access_token: str | None = None
                    ) -> httpx.Response:
        """Sends until Fortnox answers with success or the retry decision gives up; a token
        Fortnox rejects is refreshed once (a given ``access_token`` cannot be)."""
        attempt = 1
        may_refresh = access_token is None
        while True:
            bearer = await self._bearer(request.tenant, access_token, request.deadline)
            outcome = await self._attempt(span, request, bearer)
            if isinstance(outcome, httpx.Response) and outcome.is_success:
                span.set_attribute(tracing.RETRIES, attempt - 1)
                return outcome
            body = _failure_body(span, outcome)
            if may_refresh and _token_rejected(outcome, body):
                may_refresh = False
                await self._tokens.rejected(request.tenant, bearer.generation, request.deadline)
                continue
            decision = decide(
                self._retry, attempt, idempotent=request.method == "GET",
                outcome=outcome.status_code if isinstance(outcome, httpx.Response) else outcome,
                time_left_s=seconds_left(request.deadline),
            )
            span.set_attribute(tracing.RETRIES, attempt - 1)
            if isinstance(decision, GiveUp):
                raise attempt_error(request.template, outcome, request.deadline,
                                    outcome_unknown=decision.outcome_unknown, body=body) from None
            self._note_retry(span, request, outcome, decision.delay_s)
            attempt += 1
            await asyncio.sleep(decision.delay_s)

    async def _bearer(self, tenant: str, access_token: str | None, deadline: float | None
                      ) -> _Bearer:
        """The token to send, and the company whose rate limit the call counts against."""
        if access_token is not None:  # connecting: the token's claims name the company
            return _Bearer(access_token, 0, jwt_tenant_id(access_token) or tenant)
        tokens = await self._tokens.access(tenant, deadline)
        # Fortnox limits per company, however many of our tenants link it.
        return _Bearer(tokens.access_token, tokens.generation,
                       tokens.fortnox_tenant_id or tenant)

    async def _attempt(self, span: trace.Span, request: _Request, bearer: _Bearer
                       ) -> httpx.Response | httpx.TransportError:
        """One send within the rate limit: the answer (a failed one read and closed), or the
        transport error that cut it short."""
        slot = await self._slot(bearer.company, request)
        metered = metrics.HttpAttempt(request.method, request.template, self._server)
        try:
            response = await self._http.send(self._build(request, bearer), stream=request.stream)
        except httpx.TransportError as exc:
            metered.failed(exc)
            await slot.done()
            return exc
        metered.answered(response.status_code)
        await slot.done()
        span.set_attribute(tracing.STATUS, response.status_code)
        if not response.is_success and request.stream:  # read, so its error can be parsed
            await response.aread()
            await response.aclose()
        return response

    async def _slot(self, company: str, request: _Request) -> Slot:
        """A slot of the company's rate-limit window, waited for until the deadline."""
        timeout = None if request.deadline is None else remaining_s(request.deadline, math.inf)
        try:
            return await asyncio.wait_for(self._limiter.acquire(company), timeout)
        except TimeoutError:
            raise FortnoxRateLimited(
                "The call could not start within its deadline under Fortnox's rate limit.",
                metadata={"route": request.template},
            ) from None

    def _build(self, request: _Request, bearer: _Bearer) -> httpx.Request:
        headers = {"Authorization": f"Bearer {bearer.token}", "Accept": request.accept}
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        return self._http.build_request(
            request.method, request.url, params=dict(request.params or {}),
            content=None if request.body is None else jsonbody.dumps(request.body),
            headers=headers, timeout=remaining_s(request.deadline, self._timeout_s),
        )

    def _note_retry(self, span: trace.Span, request: _Request,
                    outcome: httpx.Response | httpx.TransportError, delay_s: float) -> None:
        reason = (f"HTTP {outcome.status_code}" if isinstance(outcome, httpx.Response)
                  else type(outcome).__name__)
        span.add_event("fortnox.retry", {"fortnox.reason": reason, "fortnox.delay_s": delay_s})
        metrics.fortnox_retry(request.method, request.template, reason)
        log.info("fortnox call retried",
                 extra={"tenant": request.tenant, "route": request.template, "reason": reason})

    def _request(
        self,
        tenant: str,
        method: str,
        route: str,
        path: Params | None = None,
        *,
        params: Params | None,
        body: Mapping[str, Any] | None = None,
        deadline: float | None,
        stream: bool = False,
        accept: str = "application/json",
    ) -> _Request:
        url = self._base + route.format(
            **{k: quote(str(v), safe="") for k, v in (path or {}).items()})
        return _Request(tenant, method, self._prefix + route, url, params, body, deadline,
                        stream, accept)

    def _attributes(self, request: _Request) -> dict[str, str | int]:
        return {
            tracing.METHOD: request.method,
            tracing.ROUTE: request.template,
            tracing.SERVER: self._server,
            tracing.TENANT: request.tenant,
            tracing.RETRIES: 0,
        }


@dataclass(frozen=True)
class _Request:
    """One API call as every attempt at it sends it (``template``: the route, for spans)."""

    tenant: str
    method: str
    template: str
    url: str
    params: Params | None
    body: Mapping[str, Any] | None
    deadline: float | None
    stream: bool
    accept: str

    @property
    def span_name(self) -> str:
        return f"{self.method} {self.template}"


@dataclass(frozen=True)
class _Bearer:
    """The access token of an attempt, its generation, and the company it counts against."""

    token: str = field(repr=False)
    generation: int
    company: str


def _failure_body(span: trace.Span, outcome: httpx.Response | httpx.TransportError
                  ) -> ErrorBody | None:
    """A failed answer's ``ErrorInformation``, read once for the span, the refresh and the
    error (``None`` for a transport error)."""
    if not isinstance(outcome, httpx.Response):
        return None
    body = parse_error_body(outcome.content)
    if body.code is not None:
        span.set_attribute(tracing.ERROR_CODE, str(body.code))
    return body


def _token_rejected(outcome: httpx.Response | httpx.TransportError, body: ErrorBody | None
                    ) -> bool:
    """A 401 saying the access token is no good (or not saying why): refresh and try again."""
    if not isinstance(outcome, httpx.Response) or outcome.status_code != 401 or body is None:
        return False
    return body.code is None or body.code in TOKEN_REJECTED_CODES
