"""The pipe protocol between the service and a parser process: length-prefixed frames."""

from __future__ import annotations

import enum
import struct

HEADER = struct.Struct(">IB")


class Kind(enum.IntEnum):
    """What a frame holds."""

    OPEN = 1  # service -> parser: pickled ParseOptions, a new file begins
    DATA = 2  # service -> parser: the file's next bytes
    CLOSE = 3  # service -> parser: the file ended
    PARSED = 4  # parser -> service: pickled Parsed, what a DATA frame produced
    DONE = 5  # parser -> service: pickled (Parsed, YearParsed), the file's result
    FAILED = 6  # parser -> service: the parser broke; the payload is its traceback


def frame(kind: Kind, payload: bytes) -> bytes:
    """The header and payload of one frame."""
    return HEADER.pack(len(payload), kind) + payload
