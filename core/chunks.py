"""Bytes streamed to a caller, cut into the pieces one response message may carry."""

from __future__ import annotations

from typing import NamedTuple

#: The most bytes one streamed chunk carries (the contract's limit; gRPC messages stay well
#: under 4 MiB).
CHUNK_BYTES = 1 << 20


class Piece(NamedTuple):
    """Some bytes of a file, where they start in it, and whether they end it."""

    offset: int
    data: bytes
    last: bool


def pieces(data: bytes, offset: int, *, last: bool) -> list[Piece]:
    """``data``, which starts at ``offset`` of its file, in pieces of at most ``CHUNK_BYTES``.
    With ``last`` the final piece is flagged, and empty ``data`` still gives one (empty) piece,
    so the caller always learns where the file ends."""
    if not data:
        return [Piece(offset, b"", True)] if last else []
    return [
        Piece(offset + start, data[start:start + CHUNK_BYTES],
              last and start + CHUNK_BYTES >= len(data))
        for start in range(0, len(data), CHUNK_BYTES)
    ]


def whole_pieces(pending: bytes) -> int:
    """How many leading bytes of ``pending`` fill whole pieces that can go before the stream
    ends: all but the last 1 to ``CHUNK_BYTES``, which may still turn out to be the last."""
    return max(0, len(pending) - 1) // CHUNK_BYTES * CHUNK_BYTES
