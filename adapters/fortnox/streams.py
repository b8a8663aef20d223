"""A download in progress as the core's ``ByteStream``: chunks as they arrive, closable.

A connection lost mid-body is retried (downloads are reads) without the caller seeing it:
Fortnox promises no ``Range`` support, so the file is fetched again from its start, the bytes
already delivered are read past after checking (by SHA-256) that they are the same, and the
stream goes on from there. A file that changed between attempts fails as ``FortnoxUnavailable``
rather than splicing two versions together.

The body is decompressed a bounded piece at a time and counted (``bodies``): a file longer
than the download bound fails with its own reason, and a download ends by its time limit even
when every read brings a byte just in time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

import httpx
from opentelemetry import trace

from adapters.fortnox import bodies, tracing
from adapters.fortnox.errors import AnswerTimedOut, malformed, too_large, unavailable
from adapters.fortnox.retry import (
    NO_RETRY,
    GiveUp,
    RetryPolicy,
    decide,
    remaining_s,
    seconds_left,
)
from core.errors import DomainError, FortnoxUnavailable

log = logging.getLogger(__name__)

_FILENAME = re.compile(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', re.IGNORECASE)


class HttpByteStream:
    """Wraps a streamed ``httpx.Response`` and the span that ends when it is closed."""

    def __init__(
        self,
        response: httpx.Response,
        span: trace.Span,
        route: str,
        default_name: str,
        deadline: float | None,
        *,
        reopen: Callable[[], Awaitable[httpx.Response]] | None = None,
        retry: RetryPolicy | None = None,
        until: float | None = None,
        limit: int = 2**62,
        too_large_reason: str | None = None,
    ) -> None:
        """``deadline``: the caller's; ``until``: when the download ends at the latest (the
        caller's deadline or the download's time limit); ``limit``: the most bytes read."""
        self._response = response
        self._until = deadline if until is None else until
        self._limit = limit
        self._too_large_reason = too_large_reason
        self._reopen = reopen
        self._retry = retry or NO_RETRY
        self._sent = hashlib.sha256()  # of the bytes delivered so far
        self._check = hashlib.sha256()  # of a fresh answer's bytes read past so far
        self._skip_left = 0  # bytes of a fresh answer still to read past
        self._deadline = deadline
        self._span = span
        self._route = route
        self._bytes = 0
        self._closed = False
        disposition = _FILENAME.search(response.headers.get("content-disposition", ""))
        self._file_name: str = disposition.group(1) if disposition else default_name

    @property
    def content_type(self) -> str:
        """The media type Fortnox sent, without parameters."""
        media_type: str = self._response.headers.get("content-type", "")
        return media_type.split(";")[0].strip()

    @property
    def file_name(self) -> str:
        """The file name Fortnox gave, else one derived from the request."""
        return self._file_name

    @property
    def content_length(self) -> int | None:
        """The announced size, if any."""
        raw = self._response.headers.get("content-length")
        return int(raw) if raw and raw.isdigit() else None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        attempt = 1
        try:
            while True:
                try:
                    async for chunk in self._pieces():
                        if self._skip_left:
                            chunk = self._skip(chunk)
                        if chunk:
                            self._bytes += len(chunk)
                            self._sent.update(chunk)
                            yield chunk
                    if self._skip_left:
                        raise FortnoxUnavailable(
                            "A download came back shorter on retry than before.",
                            metadata={"route": self._route})
                    return
                except httpx.TransportError as exc:
                    decision = decide(self._retry, attempt, idempotent=True, outcome=exc,
                                      time_left_s=seconds_left(self._until))
                    if isinstance(decision, GiveUp) or self._reopen is None:
                        raise unavailable(self._route, exc, self._deadline) from None
                    attempt += 1
                    await self._restart(type(exc).__name__, decision.delay_s)
                except bodies.BodyTooLarge as exc:
                    raise too_large(self._route, exc.limit,
                                    reason=self._too_large_reason) from None
                except bodies.BodyUnreadable as exc:
                    raise malformed(self._route, str(exc)) from None
        except DomainError as error:  # cut off, out of time, or refused on the retry
            self._span.set_status(trace.StatusCode.ERROR, error.message)
            await self.aclose()
            raise
        finally:
            if not self._response.is_closed and self._response.is_stream_consumed:
                await self.aclose()

    async def _pieces(self) -> AsyncGenerator[bytes, None]:
        """The answer's decompressed pieces, each read within what is left of the time."""
        pieces = bodies.decoded(self._response, self._limit)
        try:
            while True:
                try:
                    async with asyncio.timeout(
                            None if self._until is None else remaining_s(self._until, math.inf)):
                        piece = await anext(pieces)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise AnswerTimedOut("the download did not end within its time") from None
                yield piece
        finally:
            await pieces.aclose()

    async def _restart(self, reason: str, delay: float) -> None:
        """Fetches the file again, to be read past what was delivered."""
        self._span.add_event("fortnox.retry", {"fortnox.reason": reason,
                                               "fortnox.delay_s": delay,
                                               "fortnox.resume_at": self._bytes})
        log.info("fortnox download restarted", extra={"route": self._route,
                                                       "offset": self._bytes})
        await self._response.aclose()
        await asyncio.sleep(delay)
        assert self._reopen is not None
        self._response = await self._reopen()
        self._check = hashlib.sha256()
        self._skip_left = self._bytes

    def _skip(self, chunk: bytes) -> bytes:
        """Reads past the part of ``chunk`` delivered before, checking it is the same bytes."""
        head, rest = chunk[:self._skip_left], chunk[self._skip_left:]
        self._check.update(head)
        self._skip_left -= len(head)
        if not self._skip_left and self._check.digest() != self._sent.digest():
            raise FortnoxUnavailable(
                "A download changed between attempts; it cannot be resumed.",
                metadata={"route": self._route})
        return rest

    async def aclose(self) -> None:
        """Closes the response and ends the span (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._response.aclose()
        finally:
            self._span.set_attribute(tracing.BYTES, self._bytes)
            self._span.end()

    async def __aenter__(self) -> HttpByteStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
