"""One Fortnox API call: token, rate limit, span, retries, error mapping.

Reads are retried on 429, 5xx, connection errors and timeouts. A write is retried only when
Fortnox certainly did not act on it (429, a 401 before a refresh, a connection never made);
once it may have arrived, a missing answer is ``FortnoxOutcomeUnknown``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from opentelemetry import trace

from adapters.fortnox import jsonbody, tracing
from adapters.fortnox.errors import TOKEN_REJECTED_CODES, error_for_response, unavailable
from adapters.fortnox.limiter import SlidingWindowLimiter
from adapters.fortnox.retry import NOT_SENT_ERRORS, RetryPolicy, remaining_s
from adapters.fortnox.streams import HttpByteStream
from adapters.fortnox.tokens import TokenManager
from core.errors import (
    DeadlineExceeded,
    FortnoxError,
    FortnoxOutcomeUnknown,
    FortnoxRateLimited,
)

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
        return await self._json(tenant, "GET", route, path, params, None, deadline, access_token)

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
        return await self._json(tenant, "POST", route, None, params, body, deadline, None)

    async def open_stream(
        self,
        tenant: str,
        route: str,
        path: Params | None = None,
        *,
        params: Params | None = None,
        deadline: float | None = None,
        default_name: str = "download",
    ) -> HttpByteStream:
        """``GET`` a file; the answer's body is left unread for the caller to stream."""
        span = self._tracer.start_span(
            self._span_name("GET", route), kind=trace.SpanKind.CLIENT,
            attributes=self._attributes(tenant, "GET", route),
        )
        try:
            with trace.use_span(span, end_on_exit=False):
                response = await self._send(
                    span, tenant, "GET", route, path, params, None, deadline, stream=True
                )
        except BaseException:
            span.end()
            raise
        return HttpByteStream(response, span, self._prefix + route, default_name, deadline)

    async def _json(
        self,
        tenant: str,
        method: str,
        route: str,
        path: Params | None,
        params: Params | None,
        body: Mapping[str, Any] | None,
        deadline: float | None,
        access_token: str | None,
    ) -> dict[str, Any]:
        with self._tracer.start_as_current_span(
            self._span_name(method, route), kind=trace.SpanKind.CLIENT,
            attributes=self._attributes(tenant, method, route),
        ) as span:
            response = await self._send(
                span, tenant, method, route, path, params, body, deadline, stream=False,
                access_token=access_token,
            )
            try:
                data = response.json()
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise unavailable(self._prefix + route, ValueError("not a JSON object"), None)
            return data

    async def _send(
        self,
        span: trace.Span,
        tenant: str,
        method: str,
        route: str,
        path: Params | None,
        params: Params | None,
        body: Mapping[str, Any] | None,
        deadline: float | None,
        *,
        stream: bool,
        access_token: str | None = None,
    ) -> httpx.Response:
        template = self._prefix + route
        url = self._base + route.format(**{k: quote(str(v), safe="") for k, v in
                                           (path or {}).items()})
        is_read = method == "GET"
        retries = 0
        refreshed = access_token is not None  # a given token cannot be refreshed
        while True:
            if access_token is None:
                tokens = await self._tokens.access(tenant, deadline)
                bearer, generation = tokens.access_token, tokens.generation
                company = tokens.fortnox_tenant_id or tenant  # Fortnox limits per company
            else:  # connecting: the company is not known yet, so the tenant stands for it
                bearer, generation, company = access_token, 0, tenant
            try:
                slot = await asyncio.wait_for(
                    self._limiter.acquire(company), remaining_s(deadline, float("inf"))
                    if deadline is not None else None,
                )
            except TimeoutError:
                raise FortnoxRateLimited(
                    "The call could not start within its deadline under Fortnox's rate limit.",
                    metadata={"route": template},
                ) from None
            headers = {"Authorization": f"Bearer {bearer}",
                       "Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            request = self._http.build_request(
                method, url, params=dict(params or {}),
                content=None if body is None else jsonbody.dumps(body), headers=headers,
                timeout=remaining_s(deadline, self._timeout_s),
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                await slot.done()
                not_sent = isinstance(exc, NOT_SENT_ERRORS)
                if not is_read and not not_sent:
                    span.set_attribute(tracing.RETRIES, retries)
                    raise FortnoxOutcomeUnknown(
                        "Fortnox's answer to a write was lost; it may or may not have happened.",
                        metadata={"route": template, "transport_error": type(exc).__name__},
                    ) from None
                failure = unavailable(template, exc, deadline)
                if isinstance(failure, DeadlineExceeded):  # no time is left to retry in
                    raise failure from None
                error: FortnoxError = failure
                event = type(exc).__name__
            else:
                await slot.done()
                span.set_attribute(tracing.STATUS, response.status_code)
                if response.is_success:
                    span.set_attribute(tracing.RETRIES, retries)
                    return response
                if stream:
                    await response.aread()
                    await response.aclose()
                error = error_for_response(response, template)
                code = error.metadata.get("fortnox_code")
                if code:
                    span.set_attribute(tracing.ERROR_CODE, code)
                if response.status_code == 401 and not refreshed and (
                    code is None or int(code) in TOKEN_REJECTED_CODES
                ):
                    refreshed = True
                    await self._tokens.rejected(tenant, generation, deadline)
                    continue
                retriable = response.status_code == 429 or (
                    is_read and response.status_code >= 500
                )
                if not is_read and response.status_code >= 500:
                    span.set_attribute(tracing.RETRIES, retries)
                    raise FortnoxOutcomeUnknown(
                        "Fortnox failed while handling a write; it may or may not have happened.",
                        metadata=error.metadata,
                    )
                if not retriable:
                    span.set_attribute(tracing.RETRIES, retries)
                    raise error
                event = f"HTTP {response.status_code}"
            delay = self._retry.next_delay(retries, deadline)
            span.set_attribute(tracing.RETRIES, retries)
            if delay is None:
                raise error
            span.add_event("fortnox.retry", {"fortnox.reason": event, "fortnox.delay_s": delay})
            log.info("fortnox call retried",
                     extra={"tenant": tenant, "route": template, "reason": event})
            retries += 1
            await asyncio.sleep(delay)

    def _span_name(self, method: str, route: str) -> str:
        return f"{method} {self._prefix}{route}"

    def _attributes(self, tenant: str, method: str, route: str) -> dict[str, str | int]:
        return {
            tracing.METHOD: method,
            tracing.ROUTE: self._prefix + route,
            tracing.SERVER: self._server,
            tracing.TENANT: tenant,
            tracing.RETRIES: 0,
        }
