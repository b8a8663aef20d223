"""A parser process: reads frames on stdin, runs ``YearParse`` and answers on stdout.

It ends when stdin closes, so it never outlives the service, even one killed with SIGKILL.
Its one argument, if given, names the ``RecordEncoder`` (``module:name``) that encodes
record batches here, as the caller's messages (the service's, which this layer cannot import).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import pickle
import sys
import traceback
from collections.abc import Iterator
from typing import BinaryIO, cast

from adapters.sie_parsing.frames import HEADER, Kind, frame, parsed_frame, released_frame
from core.sie_parse import Parsed, RecordEncoder, YearParse
from sie.collector import streaming_collector

#: Each pipe to and from the service holds this much (Linux's default is 64 KiB, its most for a
#: process without privileges 1 MiB): the service hands a chunk of the file over whole while
#: this process still parses the one before, so it never waits, mid-chunk, for the service's
#: event loop to write on, and its answers never wait for that loop to read them.
PIPE_BYTES = 1 << 20


def widen(*pipes: BinaryIO) -> None:
    """Makes each pipe hold ``PIPE_BYTES`` where the system allows it (a smaller one only
    costs speed; a file or a terminal stays as it is)."""
    for pipe in pipes:
        with contextlib.suppress(OSError, AttributeError):  # not a pipe, not Linux, too large
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _read(source: BinaryIO, size: int) -> bytes | None:
    """Exactly ``size`` bytes, or None at the end of input."""
    data = source.read(size)
    if len(data) < size:
        return None
    return data


def encoder(name: str) -> RecordEncoder:
    """The encoder ``module:name`` names."""
    module, _, attribute = name.partition(":")
    return cast(RecordEncoder, getattr(importlib.import_module(module), attribute))


def _ahead(pieces: Iterator[Parsed]) -> Iterator[tuple[Parsed, bool]]:
    """Each piece, and whether another follows."""
    current = next(pieces)
    for following in pieces:
        yield current, True
        current = following
    yield current, False


def serve(source: BinaryIO, sink: BinaryIO, encode: RecordEncoder | None = None) -> int:
    """Parses files until the input ends."""
    parse: YearParse | None = None
    release: Iterator[tuple[Parsed, bool]] | None = None  # the held records, piece by piece
    while (header := _read(source, HEADER.size)) is not None:
        size, kind = HEADER.unpack(header)
        payload = _read(source, size)
        if payload is None:
            return 1
        try:
            if kind == Kind.OPEN:
                parse = YearParse(pickle.loads(payload), encode)
                continue
            assert parse is not None, "a file's bytes came before its OPEN frame"
            if kind == Kind.DATA:
                answer = parsed_frame(parse.feed(payload))
            elif kind == Kind.COUNTS:
                release = _ahead(parse.counts(pickle.loads(payload)))
                answer = released_frame(*next(release))
            elif kind == Kind.MORE:
                assert release is not None, "MORE before COUNTS"
                answer = released_frame(*next(release))
            else:
                answer = frame(Kind.DONE, pickle.dumps(parse.close(), 5))
                parse = None
        except Exception:  # a bug: the service logs the traceback, in its own log format
            sink.write(frame(Kind.FAILED, traceback.format_exc().encode()))
            sink.flush()
            return 1
        sink.write(answer)
        sink.flush()
    return 0


if __name__ == "__main__":
    widen(sys.stdin.buffer, sys.stdout.buffer)
    with streaming_collector():
        code = serve(sys.stdin.buffer, sys.stdout.buffer,
                     encoder(sys.argv[1]) if len(sys.argv) > 1 else None)
    sys.exit(code)
