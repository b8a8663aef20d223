"""One Fortnox API call: a span around attempts, each with a token and a rate-limit slot.

Whether a failed attempt is tried again is ``retry.decide``'s call (a write only when Fortnox
certainly did not act on it); what a failure means for the caller is ``errors``'. A 401 for a
rejected token is answered by one refresh, whatever the method.

Nothing Fortnox sends is trusted in size, shape or time: an answer's body is read within a
bound counted after decompression (``bodies``), must be a JSON object without an
``ErrorInformation`` in it, and each attempt (from sending to the last byte) and each call (all
its attempts and waits) ends within its own time limit, deadline or not.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from opentelemetry import trace

from adapters import metrics
from adapters.fortnox import bodies, jsonbody, tracing
from adapters.fortnox.arrival import answer_age_s
from adapters.fortnox.errors import (
    TOKEN_REJECTED_CODES,
    AnswerTimedOut,
    ErrorBody,
    attempt_error,
    malformed,
    parse_error_body,
    refusal_in_success,
    too_large,
)
from adapters.fortnox.jwt_claims import jwt_tenant_id
from adapters.fortnox.limiter import SlidingWindowLimiter, Slot
from adapters.fortnox.retry import Retries, RetryPolicy, remaining_s
from adapters.fortnox.streams import HttpByteStream
from adapters.fortnox.tokens import TokenManager
from core.errors import FortnoxRateLimited
from core.fortnox_api import Proof

Params = Mapping[str, str | int]
#: Parsed URLs kept for reuse (``Transport._url``).
_URLS_KEPT = 1024


class Transport:
    """Sends API requests for a tenant through the shared client, limiter and tokens."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        pools: httpx.AsyncBaseTransport | None = None,
        api_base_url: str,
        tokens: TokenManager,
        limiter: SlidingWindowLimiter,
        tracer: trace.Tracer,
        retry: RetryPolicy,
        timeout_s: float,
        call_timeout_s: float,
        download_timeout_s: float,
        max_json_bytes: int,
        max_download_bytes: int,
    ) -> None:
        """``timeout_s``: one attempt, from sending to the answer's last byte (a download's:
        to its headers, then each read); ``call_timeout_s``: a call with all its attempts and
        waits; ``download_timeout_s``: a download to its last byte; ``max_json_bytes``,
        ``max_download_bytes``: the most of an answer read, decompressed; ``pools``: the
        client's own connections, to send through them directly (``None``: through ``http``,
        as when it routes through a proxy)."""
        self._http = http
        self._pools = pools
        # The client's headers (its User-Agent, Accept-Encoding), each request's beside them.
        self._headers = dict(http.headers)
        self._base = api_base_url.rstrip("/")
        self._prefix = urlsplit(self._base).path
        self._server = urlsplit(self._base).hostname or ""
        self._tokens = tokens
        self._limiter = limiter
        self._tracer = tracer
        self._retry = retry
        self._timeout_s = timeout_s
        self._call_timeout_s = call_timeout_s
        self._download_timeout_s = download_timeout_s
        self._max_json_bytes = max_json_bytes
        self._max_download_bytes = max_download_bytes
        self._urls: dict[tuple[str, tuple[tuple[str, str | int], ...]], httpx.URL] = {}

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
        proof: Proof | None = None,
    ) -> dict[str, Any]:
        """``POST`` a JSON body (a write: never repeated once it may have arrived); ``proof``
        is awaited right before each attempt leaves, after every wait."""
        return await self._json(self._request(tenant, "POST", route, params=params, body=body,
                                              deadline=deadline, proof=proof))

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
        too_large_reason: str | None = None,
    ) -> HttpByteStream:
        """``GET`` a file (``accept``: the media types it may come as); the answer's body is
        left unread for the caller to stream. A connection lost mid-body is retried as a read:
        the file is fetched again and continues after the bytes already delivered. A file
        longer than the download bound fails with ``too_large_reason`` (or the general one)."""
        request = self._request(tenant, "GET", route, path, params=params, deadline=deadline,
                                stream=True, accept=accept)
        span = self._tracer.start_span(request.span_name, kind=trace.SpanKind.CLIENT,
                                       attributes=self._attributes(request))

        async def send() -> httpx.Response:
            with trace.use_span(span, end_on_exit=False):
                return (await self._send(span, request)).response

        try:
            response = await send()
        except BaseException:
            span.end()
            raise
        retries = Retries(self._retry, span, method="GET", route=request.template,
                          idempotent=True, until=request.until, tenant=tenant,
                          count_in_span=False)
        return HttpByteStream(response, span, request.template, default_name, deadline,
                              reopen=send, retries=retries, until=request.until,
                              limit=self._max_download_bytes,
                              too_large_reason=too_large_reason)

    def template(self, route: str) -> str:
        """The route as spans and errors name it (with the API's path, e.g. ``/3/...``)."""
        return self._prefix + route

    async def _json(self, request: _Request, access_token: str | None = None) -> dict[str, Any]:
        with self._tracer.start_as_current_span(
            request.span_name, kind=trace.SpanKind.CLIENT, attributes=self._attributes(request),
        ) as span:
            answer = await self._send(span, request, access_token)
            return _json_object(request, answer)

    async def _send(self, span: trace.Span, request: _Request, access_token: str | None = None
                    ) -> _Answer:
        """Sends until Fortnox answers with success or the retry loop gives up; a token
        Fortnox rejects is refreshed once (a given ``access_token`` cannot be)."""
        retries = Retries(self._retry, span, method=request.method, route=request.template,
                          idempotent=request.method == "GET", until=request.until,
                          tenant=request.tenant)
        may_refresh = access_token is None
        while True:
            bearer = await self._bearer(request.tenant, access_token, request.until)
            outcome = await self._attempt(span, request, bearer)
            if isinstance(outcome, _Answer) and outcome.response.is_success:
                return outcome
            body = _failure_body(span, outcome)
            if may_refresh and _token_rejected(outcome, body):
                may_refresh = False
                await self._tokens.rejected(request.tenant, bearer.generation, request.until)
                continue
            failed = outcome.response if isinstance(outcome, _Answer) else outcome
            stop = await retries.again(failed.status_code if isinstance(failed, httpx.Response)
                                       else failed)
            if stop is not None:
                raise attempt_error(request.template, failed, request.deadline,
                                    outcome_unknown=stop.outcome_unknown, body=body) from None

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
                       ) -> _Answer | httpx.TransportError:
        """One send within the rate limit and the attempt's time: the answer (read within its
        bound and closed, but a download's success, left to stream), or the transport error
        that cut it short (``AnswerTimedOut`` when the time ran out)."""
        slot = await self._slot(bearer.company, request)
        if request.proof is not None:
            try:
                await request.proof()  # the last check before the request leaves
            except BaseException:
                await slot.done()
                raise
        metered = metrics.HttpAttempt(request.method, request.template, self._server)
        answered = False
        try:
            async with asyncio.timeout(remaining_s(request.until, self._timeout_s)):
                sent_at = time.monotonic()
                response = await self._exchange(self._build(request, bearer))
                answered = True
                # Fortnox counted the request before it began to answer: dated by when the
                # answer reached this host, not when this busy loop came to read it, nor
                # after the body is read and the connection handed back.
                await slot.done(answer_age_s(response, sent_at))
                metered.answered(response.status_code)
                span.set_attribute(tracing.STATUS, response.status_code)
                if response.is_success and request.stream:
                    return _Answer(response, b"")
                try:
                    return _Answer(response, await self._read(request, response))
                finally:
                    await response.aclose()
        except (httpx.TransportError, TimeoutError) as exc:
            failure = exc if isinstance(exc, httpx.TransportError) else AnswerTimedOut(
                "the answer did not arrive within the attempt's time")
            if not answered:
                metered.failed(failure)
            return failure
        finally:
            await slot.done()

    async def _exchange(self, sent: httpx.Request) -> httpx.Response:
        """Sends ``sent`` and returns its answer with the body unread. Straight to the pools
        when there are: the client's own steps (redirects, authentication, its cookie jar,
        which keeps none) do nothing for an API call (redirects are not followed, the token
        is in the request) but cost a tenth of a call's CPU, the cookie jar most."""
        if self._pools is None:
            return await self._http.send(sent, stream=True)
        response = await self._pools.handle_async_request(sent)
        response.request = sent
        return response

    async def _read(self, request: _Request, response: httpx.Response) -> bytes:
        """A JSON answer's body within its bound (a failed one's, within a small one)."""
        if not response.is_success:
            return await bodies.read_short(response)
        write = request.method != "GET"
        try:
            return await bodies.read(response, self._max_json_bytes)
        except bodies.BodyTooLarge as exc:
            raise too_large(request.template, exc.limit, write=write) from None
        except bodies.BodyUnreadable as exc:
            raise malformed(request.template, str(exc), write=write) from None

    async def _slot(self, company: str, request: _Request) -> Slot:
        """A slot of the company's rate-limit window, waited for until the deadline."""
        try:
            # Not ``wait_for``: that runs the wait as a task of its own, one more per call.
            async with asyncio.timeout(remaining_s(request.until, math.inf)):
                return await self._limiter.acquire(company)
        except TimeoutError:
            raise FortnoxRateLimited(
                "The call could not start within its deadline under Fortnox's rate limit.",
                metadata={"route": request.template},
            ) from None

    def _build(self, request: _Request, bearer: _Bearer) -> httpx.Request:
        headers = {**self._headers, "Authorization": f"Bearer {bearer.token}",
                   "Accept": request.accept}
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        timeout = httpx.Timeout(remaining_s(request.until, self._timeout_s))
        return httpx.Request(
            request.method, self._url(request),
            content=None if request.body is None else jsonbody.dumps(request.body),
            headers=headers, extensions={"timeout": timeout.as_dict()},
        )

    def _url(self, request: _Request) -> httpx.URL:
        """The request's URL with its query, parsed once for each of the last
        ``_URLS_KEPT`` asked for: parsing and encoding it anew was a third of building a
        request, and a tenant's calls repeat a few URLs (each page, each year)."""
        key = (request.url, tuple(request.params.items()) if request.params else ())
        url = self._urls.get(key)
        if url is None:
            url = httpx.URL(request.url)
            if request.params:
                url = url.copy_merge_params(dict(request.params))
            if len(self._urls) >= _URLS_KEPT:
                del self._urls[next(iter(self._urls))]  # the oldest
            self._urls[key] = url
        return url

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
        proof: Proof | None = None,
    ) -> _Request:
        url = self._base + route.format(
            **{k: quote(str(v), safe="") for k, v in (path or {}).items()})
        limit_s = self._download_timeout_s if stream else self._call_timeout_s
        return _Request(tenant, method, self._prefix + route, url, params, body, deadline,
                        stream, accept, time.monotonic() + limit_s, proof)

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
    give_up_at: float  # the call's own time limit, on ``time.monotonic()``
    proof: Proof | None = None

    @property
    def span_name(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def until(self) -> float:
        """When the call ends at the latest: its caller's deadline or its own time limit."""
        return self.give_up_at if self.deadline is None else min(self.deadline, self.give_up_at)


@dataclass(frozen=True)
class _Answer:
    """An answer of Fortnox and its body (read and closed; unread for a download)."""

    response: httpx.Response
    body: bytes


@dataclass(frozen=True)
class _Bearer:
    """The access token of an attempt, its generation, and the company it counts against."""

    token: str = field(repr=False)
    generation: int
    company: str


def _json_object(request: _Request, answer: _Answer) -> dict[str, Any]:
    """A successful answer's JSON object; an answer that is none, or that holds an
    ``ErrorInformation``, is an error (for a write: of unknown outcome)."""
    write = request.method != "GET"
    try:
        data = json.loads(answer.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise malformed(request.template, "the answer is not JSON", write=write) from None
    if not isinstance(data, dict):
        raise malformed(request.template, "the answer is not a JSON object", write=write)
    if any(str(key).lower() == "errorinformation" for key in data):
        raise refusal_in_success(request.template, answer.response.status_code,
                                 parse_error_body(answer.body), write=write)
    return data


def _failure_body(span: trace.Span, outcome: _Answer | httpx.TransportError
                  ) -> ErrorBody | None:
    """A failed answer's ``ErrorInformation``, read once for the span, the refresh and the
    error (``None`` for a transport error)."""
    if not isinstance(outcome, _Answer):
        return None
    body = parse_error_body(outcome.body)
    if body.code is not None:
        span.set_attribute(tracing.ERROR_CODE, str(body.code))
    return body


def _token_rejected(outcome: _Answer | httpx.TransportError, body: ErrorBody | None
                    ) -> bool:
    """A 401 saying the access token is no good (or not saying why): refresh and try again."""
    if (not isinstance(outcome, _Answer) or outcome.response.status_code != 401
            or body is None):
        return False
    return body.code is None or body.code in TOKEN_REJECTED_CODES
