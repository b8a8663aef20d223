"""The SQLite store (through sqlite-utils): one file, WAL mode, versioned migrations."""

from adapters.sqlite.database import StoreError, open_database
from adapters.sqlite.stores import SqliteStores

__all__ = ["SqliteStores", "StoreError", "open_database"]
