"""The pipe protocol between the service and a parser process: length-prefixed frames.

A ``PARSED`` answer, one per chunk of the file, is framed by hand rather than pickled: the
fingerprints go as one text and one byte string, which the service stores as they are, and
only findings and record batches (rare, or asked for) are pickled. Record batches held for
their vouchers' document counts go back after ``COUNTS`` a piece at a time (``RELEASED``), the
next piece asked for (``MORE``) once the service has taken the last.
"""

from __future__ import annotations

import enum
import pickle
import struct

from core.sie_parse import Parsed
from core.voucher_digest import DigestBatch

HEADER = struct.Struct(">IB")
#: A ``PARSED`` payload: vouchers read so far, the first fingerprint's position, then the
#: byte lengths of the keys (UTF-8), the digests and the pickled events that follow.
_PARSED = struct.Struct(">QQIII")


class Kind(enum.IntEnum):
    """What a frame holds."""

    OPEN = 1  # service -> parser: pickled ParseOptions, a new file begins
    DATA = 2  # service -> parser: the file's next bytes
    CLOSE = 3  # service -> parser: the file ended
    PARSED = 4  # parser -> service: a Parsed (``parsed_frame``), what a DATA frame produced
    DONE = 5  # parser -> service: pickled (Parsed, YearParsed), the file's result
    FAILED = 6  # parser -> service: the parser broke; the payload is its traceback
    COUNTS = 7  # service -> parser: pickled document counts (or None), answered by RELEASED
    MORE = 8  # service -> parser: the next piece of the held records, answered by RELEASED
    RELEASED = 9  # parser -> service: whether more are held (1 byte), then a PARSED payload


def frame(kind: Kind, payload: bytes) -> bytes:
    """The header and payload of one frame."""
    return HEADER.pack(len(payload), kind) + payload


def parsed_frame(parsed: Parsed) -> bytes:
    """A whole ``PARSED`` frame."""
    keys = parsed.digests.keys.encode()
    digests = parsed.digests.digests
    events = pickle.dumps(parsed.events, 5) if parsed.events else b""
    head = _PARSED.pack(parsed.vouchers, parsed.digests.start, len(keys), len(digests),
                        len(events))
    size = len(head) + len(keys) + len(digests) + len(events)
    return b"".join((HEADER.pack(size, Kind.PARSED), head, keys, digests, events))


def released_frame(parsed: Parsed, more: bool) -> bytes:
    """A whole ``RELEASED`` frame: a piece of the records held for their counts."""
    inner = parsed_frame(parsed)[HEADER.size:]
    return HEADER.pack(len(inner) + 1, Kind.RELEASED) + (b"\x01" if more else b"\x00") + inner


def read_released(payload: bytes) -> tuple[Parsed, bool]:
    """The piece of held records a ``RELEASED`` frame's payload holds, and whether more are."""
    return read_parsed(payload[1:]), payload[0] == 1


def read_parsed(payload: bytes) -> Parsed:
    """The ``Parsed`` a ``PARSED`` frame's payload holds."""
    vouchers, start, keys, digests, events = _PARSED.unpack_from(payload)
    at = _PARSED.size
    view = memoryview(payload)
    batch = DigestBatch(start, str(view[at:at + keys], "utf-8"),
                        bytes(view[at + keys:at + keys + digests]))
    at += keys + digests
    return Parsed(pickle.loads(view[at:at + events]) if events else (), batch, vouchers)
