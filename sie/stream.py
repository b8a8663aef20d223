"""Pull-style conveniences over `SieReader`: bytes, binary files, chunk iterators, paths."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from sie.document import DocumentBuilder, SieDocument
from sie.policy import ReadPolicy, Variant
from sie.reader import SieReader
from sie.records import Event
from sie.summary import ReadSummary

CHUNK_SIZE = 1 << 16
Source = bytes | bytearray | memoryview | BinaryIO | Iterable[bytes] | Path


def _chunks(source: Source) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        for start in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[start : start + CHUNK_SIZE])
    elif isinstance(source, Path):
        with source.open("rb") as handle:
            yield from iter(lambda: handle.read(CHUNK_SIZE), b"")
    elif hasattr(source, "read"):
        reader = source.read
        yield from iter(lambda: reader(CHUNK_SIZE), b"")
    else:
        yield from source


def policy_for_path(path: Path, policy: ReadPolicy | None = None) -> ReadPolicy:
    """Return `policy` with the 4I/4E variant taken from the extension (`.si` = 4I)."""
    base = policy or ReadPolicy()
    if base.variant is not None:
        return base
    variant = Variant.IMPORT if path.suffix.lower() == ".si" else Variant.EXPORT
    return replace(base, variant=variant)


def iter_events(source: Source, policy: ReadPolicy | None = None) -> Iterator[Event]:
    """Yield every record and finding of `source`, streaming."""
    if isinstance(source, Path):
        policy = policy_for_path(source, policy)
    reader = SieReader(policy)
    for chunk in _chunks(source):
        yield from reader.feed(chunk)
    yield from reader.close()


def read_summary(source: Source, policy: ReadPolicy | None = None) -> ReadSummary:
    """Stream `source` and return only its summary (constant memory)."""
    if isinstance(source, Path):
        policy = policy_for_path(source, policy)
    reader = SieReader(policy)
    for chunk in _chunks(source):
        reader.feed(chunk)
    reader.close()
    return reader.summary()


def read_document(source: Source, policy: ReadPolicy | None = None) -> SieDocument:
    """Read `source` completely into a `SieDocument` (findings and summary attached).

    A `Path` source (here and in `iter_events`/`read_summary`) also sets the 4I/4E
    variant from its extension unless the policy names one.
    """
    if isinstance(source, Path):
        policy = policy_for_path(source, policy)
    reader = SieReader(policy)
    builder = DocumentBuilder()
    for chunk in _chunks(source):
        builder.add_all(reader.feed(chunk))
    builder.add_all(reader.close())
    return builder.build(reader.summary())
