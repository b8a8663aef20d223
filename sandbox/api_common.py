"""What every ``/3/`` request goes through: bearer token, injected faults, the rate limit,
scope check, Fortnox error bodies, and list pagination."""

from __future__ import annotations

import asyncio
import base64
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from sandbox import errors
from sandbox.books import Books
from sandbox.errors import FortnoxError
from sandbox.faults import Fault
from sandbox.jsonout import FortnoxJSON
from sandbox.state import SandboxState
from sandbox.tokens import AccessClaims, GrantError

MAX_LIMIT = 500
DEFAULT_LIMIT = 100


class ConnectionDropped(Exception):
    """Raised inside the ASGI app to make the server close the connection mid-answer."""


@dataclass(slots=True)
class ApiContext:
    """One authorised API request."""

    request: Request
    state: SandboxState
    claims: AccessClaims
    books: Books
    faults: list[Fault]

    def fault(self, kind: str) -> Fault | None:
        """The fired fault of ``kind``, if any."""
        return next((f for f in self.faults if f.kind == kind), None)

    def param(self, name: str, *spellings: str) -> str | None:
        """A query parameter under its exact name (or one of the documented ``spellings``):
        like Fortnox, the sandbox ignores a parameter in any other letter case."""
        query = self.request.query_params
        return next((query[n] for n in (name, *spellings) if n in query), None)

    def int_param(self, name: str, *spellings: str) -> int | None:
        """An integer query parameter; a malformed one is Fortnox's parameter error."""
        text = self.param(name, *spellings)
        if text is None or text == "":
            return None
        try:
            return int(text)
        except ValueError as exc:
            raise FortnoxError(errors.INVALID_PARAMETER, name) from exc

    def date_param(self, name: str, *spellings: str) -> date | None:
        """A ``YYYY-MM-DD`` query parameter."""
        text = self.param(name, *spellings)
        if not text:
            return None
        try:
            return date.fromisoformat(text[:10])
        except ValueError as exc:
            raise FortnoxError(errors.INVALID_PARAMETER, name) from exc

    def lastmodified(self) -> datetime | None:
        """``lastmodified=YYYY-MM-DD HH:MM`` (or a bare date), as an aware UTC time."""
        text = self.param("lastmodified")
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text.strip().replace(" ", "T"))
        except ValueError as exc:
            raise FortnoxError(errors.INVALID_PARAMETER, "lastmodified") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=self.state.clock.now().tzinfo)

    def url(self, path: str) -> str:
        """The absolute ``@url`` of a resource below ``/3/``."""
        return f"{self.request.base_url}3/{path}"


Handler = Callable[[ApiContext], Awaitable[Response]]


def _claims(state: SandboxState, request: Request) -> AccessClaims:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise FortnoxError(errors.UNAUTHORIZED)
    try:
        return state.tokens.verify_access(token.strip())
    except GrantError as exc:
        raise FortnoxError(errors.UNAUTHORIZED) from exc


def accepts(request: Request, produces: Sequence[str]) -> bool:
    """Whether the request's ``Accept`` admits one of the media types the endpoint produces
    (no header admits anything; ``q=0`` excludes)."""
    header = request.headers.get("accept")
    if header is None:
        return True
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            continue
        kind, _, sub = media.lower().partition("/")
        for offered in produces:
            offered_kind, _, offered_sub = offered.partition("/")
            if kind == "*" or (kind == offered_kind and sub in ("*", offered_sub)):
                return True
    return False


def error_response(exc: FortnoxError) -> Response:
    """Fortnox's ``ErrorInformation`` answer."""
    return FortnoxJSON(exc.body(), status_code=exc.status)


JSON = ("application/json",)


def endpoint(state: SandboxState, scopes: Sequence[str], handler: Handler,
             produces: Sequence[str] = JSON) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler`` in Fortnox's request pipeline; any one of ``scopes`` grants access,
    and the ``Accept`` header must admit one of the media types in ``produces``."""

    async def run(request: Request) -> Response:
        try:
            claims = _claims(state, request)
        except FortnoxError as exc:
            return error_response(exc)
        tenant = claims.tenant_id
        fired = state.faults.take(request.method, request.url.path, tenant)
        response = await _guarded(state, request, claims, fired, scopes, produces, handler)
        state.count_request(tenant, response.status_code)
        if any(f.kind == "drop" for f in fired):
            return DroppingResponse(response)
        return await hostile(response, fired)

    return run


async def _guarded(state: SandboxState, request: Request, claims: AccessClaims,
                   fired: list[Fault], scopes: Sequence[str], produces: Sequence[str],
                   handler: Handler) -> Response:
    delay = sum(f.latency_ms for f in fired if f.kind == "latency")
    if delay:
        await asyncio.sleep(delay / 1000)
    try:
        if any(f.kind == "rate_limit" for f in fired):
            raise FortnoxError(errors.RATE_LIMITED)
        if not state.limiter.admit(claims.client_id, claims.tenant_id):
            raise FortnoxError(errors.RATE_LIMITED)
        failure = next((f for f in fired if f.kind == "error"), None)
        if failure is not None:
            raise FortnoxError(errors.UNAVAILABLE if failure.status == 503 else errors.INTERNAL)
        if any(f.kind == "reject" for f in fired):
            raise FortnoxError(errors.PERIOD_LOCKED)
        if not claims.scopes.intersection(scopes):
            raise FortnoxError(errors.MISSING_SCOPE)
        if not accepts(request, produces):
            raise FortnoxError(errors.NOT_ACCEPTABLE, ", ".join(produces))
        books = state.books.get(claims.tenant_id)
        if books is None:
            raise FortnoxError(errors.UNAUTHORIZED)
        return await handler(ApiContext(request, state, claims, books, fired))
    except FortnoxError as exc:
        return error_response(exc)


class DroppingResponse(Response):
    """Sends the status line, headers and at most half of the body, then drops the connection.

    For a streamed body, one chunk goes out before the drop.
    """

    def __init__(self, inner: Response) -> None:
        self.inner = inner
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.inner.status_code,
                    "headers": self.inner.raw_headers})
        if isinstance(self.inner, StreamingResponse):
            iterator = self.inner.body_iterator
            async for chunk in iterator:
                data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
                await send({"type": "http.response.body", "body": data, "more_body": True})
                break
        else:
            body = bytes(self.inner.body)
            await send({"type": "http.response.body", "body": body[: len(body) // 2],
                        "more_body": True})
        raise ConnectionDropped("sandbox fault: connection dropped mid-body")


async def hostile(response: Response, fired: list[Fault]) -> Response:
    """The answer as an ``answer``, ``gzip_bomb`` or ``drip`` fault sends it (see
    :mod:`sandbox.faults`); the request has been handled already."""
    for fault in fired:
        if fault.kind == "answer":
            body = (base64.b64decode(fault.body_base64) if fault.body_base64
                    else fault.body.encode())
            return Response(body, status_code=fault.status,
                            media_type=fault.content_type)
        if fault.kind == "gzip_bomb":
            return Response(_bomb(await _body(response), fault.bomb_bytes),
                            status_code=response.status_code,
                            headers={"Content-Encoding": "gzip"},
                            media_type=response.headers.get("content-type"))
        if fault.kind == "drip":
            return DrippingResponse(response, fault.chunk_bytes, fault.chunk_delay_ms / 1000)
    return response


async def _body(response: Response) -> bytes:
    if isinstance(response, StreamingResponse):
        parts = [c.encode() if isinstance(c, str) else bytes(c)
                 async for c in response.body_iterator]
        return b"".join(parts)
    return bytes(response.body)


def _bomb(head: bytes, padding: int) -> bytes:
    """``head`` then ``padding`` spaces, gzip-compressed a MiB at a time."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    out = [compressor.compress(head)]
    block = b" " * (1 << 20)
    for start in range(0, padding, len(block)):
        out.append(compressor.compress(block[:padding - start]))
    out.append(compressor.flush())
    return b"".join(out)


class DrippingResponse(Response):
    """Sends the headers, then the body ``size`` bytes at a time with ``delay_s`` between."""

    def __init__(self, inner: Response, size: int, delay_s: float) -> None:
        self.inner = inner
        self.size = size
        self.delay_s = delay_s
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.inner.status_code,
                    "headers": self.inner.raw_headers})
        body = await _body(self.inner)
        for start in range(0, len(body), self.size):
            await send({"type": "http.response.body", "body": body[start:start + self.size],
                        "more_body": True})
            await asyncio.sleep(self.delay_s)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class LostAnswer(DroppingResponse):
    """The request took effect, but the connection closes before any body byte is sent."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.inner.status_code,
                    "headers": self.inner.raw_headers})
        raise ConnectionDropped("sandbox fault: request committed, answer dropped")


def paginate(ctx: ApiContext, key: str, items: Sequence[Any],
             render: Callable[[Any], dict[str, Any]]) -> Response:
    """A Fortnox list answer: one page of ``items`` under ``key`` plus ``MetaInformation``."""
    limit = min(ctx.int_param("limit") or DEFAULT_LIMIT, MAX_LIMIT)
    if limit < 1:
        raise FortnoxError(errors.INVALID_PARAMETER, "limit")
    page = ctx.int_param("page") or 1
    offset = ctx.int_param("offset") or 0
    if page < 1 or offset < 0:
        raise FortnoxError(errors.INVALID_PARAMETER, "page")
    total = max(0, len(items) - offset)
    pages = (total + limit - 1) // limit
    start = offset + (page - 1) * limit
    return FortnoxJSON({
        "MetaInformation": {"@TotalResources": total, "@TotalPages": pages,
                            "@CurrentPage": page},
        key: [render(item) for item in items[start:start + limit]],
    })
