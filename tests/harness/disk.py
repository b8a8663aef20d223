"""A tiny filesystem of the test's own (a tmpfs; mounting needs root), to fill up for real.

SQLite writes a WAL file and, once its frames are checkpointed, writes over them again: a
write that fits in the file's old frames needs no new space. ``next_write_grows_the_wal``
makes sure the next write does, so a full disk refuses it every time.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Disk:
    """A tiny filesystem of the test's own: ``fill`` takes its last byte, ``free`` gives it
    back."""

    path: Path

    def fill(self) -> None:
        for name, size in (("filler", 65536), ("crumbs", 512)):  # crumbs: what 64 KiB left
            fd = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            try:
                while _wrote(fd, size):
                    pass
            finally:
                os.close(fd)

    def free(self) -> None:
        for name in ("filler", "crumbs"):
            (self.path / name).unlink(missing_ok=True)


def _wrote(fd: int, size: int) -> bool:
    """Writes ``size`` zero bytes; False once the disk is full."""
    try:
        os.write(fd, bytes(size))
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return False
    return True


@pytest.fixture(name="small_disk")
def small_disk_fixture(tmp_path: Path) -> Iterator[Disk]:
    """A 4 MiB tmpfs; a module uses it by importing this function."""
    path = tmp_path / "disk"
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs",
                              str(path)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield Disk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@contextmanager
def next_write_grows_the_wal(db_path: Path) -> Iterator[None]:
    """Another process reads (which keeps SQLite from writing over the WAL's old frames) after
    a large write: the store's next write must grow the WAL file, so a full disk refuses it."""
    reader = sqlite3.connect(db_path, isolation_level=None)
    writer = sqlite3.connect(db_path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM connections").fetchone()
        writer.execute("CREATE TABLE scratch (data BLOB)")
        writer.execute("INSERT INTO scratch VALUES (?)", (bytes(256 * 1024),))
        yield
    finally:
        reader.close()
        writer.close()
