"""Rendered SIE exports kept on disk, so asking again for an unchanged year streams at disk speed.

Real Fortnox serves a large export far faster than the sandbox renders one in Python; the
benchmarks of the service measure the service, not the sandbox. A file is keyed by company,
year, type, generation date and the books' version, so any change to the books renders anew.
The file is written while it is first streamed and is never held in memory.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from sandbox.sie_export import SieExport


class SieExportCache:
    """A folder of rendered exports, removed when the process ends."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="fortnox-sandbox-sie-"))
        atexit.register(shutil.rmtree, self._dir, True)
        self._lock = threading.Lock()

    def chunks(self, export: SieExport) -> Iterator[bytes]:
        """The export's bytes: from disk when rendered before, else rendered and kept."""
        books = export.books
        stem = f"{books.tenant.id}-{export.year.id}-{export.sie_type}"
        path = self._dir / f"{stem}-{export.generated.isoformat()}-{books.version}.se"
        if path.exists():
            yield from _read(path, export.chunk_bytes)
            return
        partial = path.with_suffix(f".{uuid.uuid4().hex}.part")
        try:
            with partial.open("wb") as out:
                for chunk in export.chunks():
                    out.write(chunk)
                    yield chunk
            with self._lock:
                for stale in self._dir.glob(f"{stem}-*.se"):
                    stale.unlink(missing_ok=True)
                os.replace(partial, path)
        finally:  # a download abandoned half-way leaves nothing behind
            partial.unlink(missing_ok=True)


def _read(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(chunk_bytes):
            yield chunk
