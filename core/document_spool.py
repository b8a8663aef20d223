"""One archived file fetched whole before its first byte goes to the caller.

A caller is told each document's size and SHA-256 before its bytes, and Fortnox states neither
(its archive sends no hash, and not always a length), so the file is downloaded into a spool
first: up to ``CHUNK_BYTES`` in memory, beyond that in a temporary file, which keeps the
service's memory flat whatever the file's size. A connection dropped mid-file is fetched again
by the Fortnox client itself (``ByteStream``), before anything reached the caller.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO

from core.chunks import CHUNK_BYTES, Piece
from core.fortnox_api import FileSource, FortnoxApi


@dataclass
class SpooledFile:
    """A downloaded file: what the caller is told first, and its bytes to stream after."""

    file_name: str
    content_type: str
    size: int
    sha256: str
    _body: IO[bytes] = field(repr=False)

    def pieces(self) -> Iterator[Piece]:
        """The bytes in pieces of at most ``CHUNK_BYTES``, the last flagged (an empty file is
        one empty last piece)."""
        self._body.seek(0)
        offset = 0
        while True:
            data = self._body.read(CHUNK_BYTES)
            last = offset + len(data) >= self.size
            yield Piece(offset, data, last)
            offset += len(data)
            if last or not data:
                return

    def close(self) -> None:
        """Removes the spool (idempotent)."""
        self._body.close()

    def __enter__(self) -> SpooledFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


async def spool_file(api: FortnoxApi, tenant: str, file_id: str, *,
                     deadline: float | None) -> SpooledFile:
    """Downloads a file connection's file (``FileId``) into a spool, hashing it on the way."""
    body = tempfile.SpooledTemporaryFile(max_size=CHUNK_BYTES)  # noqa: SIM115 (closed by caller)
    try:
        sha, size = hashlib.sha256(), 0
        async with await api.open_file(tenant, file_id, FileSource.CONNECTION,
                                       deadline=deadline) as stream:
            async for chunk in stream:
                sha.update(chunk)
                body.write(chunk)
                size += len(chunk)
            name, content_type = stream.file_name, stream.content_type
    except BaseException:
        body.close()
        raise
    return SpooledFile(name, content_type or "application/octet-stream", size, sha.hexdigest(),
                       body)
