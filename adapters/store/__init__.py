"""The SQLite store (through sqlite-utils): one file, WAL mode, versioned migrations."""

from adapters.store.database import StoreError, open_database
from adapters.store.stores import SqliteStores

__all__ = ["SqliteStores", "StoreError", "open_database"]
