"""A download in progress as the core's ``ByteStream``: chunks as they arrive, closable."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
from opentelemetry import trace

from adapters.fortnox import tracing
from adapters.fortnox.errors import unavailable

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
    ) -> None:
        self._response = response
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
        try:
            async for chunk in self._response.aiter_bytes():
                self._bytes += len(chunk)
                yield chunk
        except httpx.TransportError as exc:
            error = unavailable(self._route, exc, self._deadline)
            self._span.set_status(trace.StatusCode.ERROR, error.message)
            await self.aclose()
            raise error from None
        finally:
            if not self._response.is_closed and self._response.is_stream_consumed:
                await self.aclose()

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
