"""State in PostgreSQL, for several replicas sharing one database: pool, schema, stores."""

from adapters.postgres.database import PostgresDatabase, open_postgres
from adapters.postgres.stores import PostgresStores

__all__ = ["PostgresDatabase", "PostgresStores", "open_postgres"]
