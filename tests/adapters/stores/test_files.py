"""The SQLite file and its -wal and -shm are readable by their owner only."""

from __future__ import annotations

import stat
from pathlib import Path

from adapters.sqlite import SqliteStores

KEY = bytes(range(32))


def _modes(path: Path) -> dict[str, int]:
    names = (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in names}


async def test_a_new_database_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    stores = SqliteStores(path, KEY)
    try:
        assert await stores.imports.fail_abandoned() == 0
        assert _modes(path) == {"new.sqlite3": 0o600, "new.sqlite3-wal": 0o600,
                                "new.sqlite3-shm": 0o600}
    finally:
        await stores.aclose()


async def test_an_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    await SqliteStores(path, KEY).aclose()
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.touch()
        name.chmod(0o644)
    stores = SqliteStores(path, KEY)
    try:
        assert set(_modes(path).values()) == {0o600}
    finally:
        await stores.aclose()
