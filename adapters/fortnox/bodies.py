"""Fortnox's answers read within a size counted after decompression, a bounded piece at a time.

httpx decompresses each chunk off the wire whole: 64 KiB of a gzip bomb become 64 MiB before
anyone can count them. Here the raw bytes are decompressed at most ``PIECE`` bytes at a time
and counted as they come, so an answer that expands past its bound stops there and memory
holds no more than the bound (a JSON answer, which must be parsed whole) or one piece (a
download, which is passed on).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncGenerator, Iterator

import httpx

#: The largest piece of decompressed bytes made at a time.
PIECE = 64 * 1024
#: What the client asks for (``Accept-Encoding``): the encodings read here, and only those.
ACCEPT_ENCODING = "gzip, deflate"
#: The most of a short answer read: a failed one's ``ErrorInformation``, a token grant.
SHORT_BODY_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """The answer's body, decompressed, is longer than ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit} bytes")
        self.limit = limit


class BodyUnreadable(Exception):
    """The answer's body cannot be decoded (an encoding not asked for, a corrupt stream)."""


class _Decoder:
    """Decompresses one ``Content-Encoding`` a bounded piece at a time."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._zlib: zlib._Decompress | None = None
        self._raw_deflate_tried = False
        if encoding == "gzip":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)
        elif encoding not in ("", "identity"):
            raise BodyUnreadable(f"content encoding {encoding[:40]!r} was not asked for")

    def feed(self, raw: bytes) -> Iterator[bytes]:
        if self._zlib is None:
            for start in range(0, len(raw), PIECE):
                yield raw[start:start + PIECE]
            return
        data = raw
        while data and not self._zlib.eof:
            try:
                piece = self._zlib.decompress(data, PIECE)
            except zlib.error as exc:
                if self._encoding == "deflate" and not self._raw_deflate_tried:
                    # Some servers send raw deflate under "deflate" (httpx reads both too).
                    self._raw_deflate_tried = True
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise BodyUnreadable(f"the {self._encoding} stream is corrupt") from exc
            self._raw_deflate_tried = True
            data = self._zlib.unconsumed_tail
            if piece:
                yield piece

    def end(self) -> Iterator[bytes]:
        if self._zlib is not None:
            rest = self._zlib.flush()
            for start in range(0, len(rest), PIECE):
                yield rest[start:start + PIECE]


async def decoded(response: httpx.Response, limit: int) -> AsyncGenerator[bytes, None]:
    """The body of a streamed ``response``, decompressed, in pieces of at most ``PIECE``
    bytes; ``BodyTooLarge`` as soon as more than ``limit`` bytes came out of it."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    decoder = _Decoder(encoding)
    total = 0

    def counted(pieces: Iterator[bytes]) -> Iterator[bytes]:
        nonlocal total
        for piece in pieces:
            total += len(piece)
            if total > limit:
                raise BodyTooLarge(limit)
            yield piece

    async for raw in response.aiter_raw():
        for piece in counted(decoder.feed(raw)):
            yield piece
    for piece in counted(decoder.end()):
        yield piece


async def read(response: httpx.Response, limit: int) -> bytes:
    """The whole body of a streamed ``response`` (at most ``limit`` bytes decompressed)."""
    body = bytearray()
    async for piece in decoded(response, limit):
        body += piece
    return bytes(body)


async def read_short(response: httpx.Response) -> bytes:
    """A short answer's body (an error's, a token grant's) within ``SHORT_BODY_BYTES``: a
    body longer or unreadable gives ``b""``, which then reads as no answer at all."""
    try:
        return await read(response, SHORT_BODY_BYTES)
    except (BodyTooLarge, BodyUnreadable):
        return b""
