"""The SQLite store (through sqlite-utils): one file, WAL mode, versioned migrations."""

from adapters.store.database import StoreError, open_database

__all__ = ["StoreError", "open_database"]
