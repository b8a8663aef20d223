"""State in PostgreSQL, for several replicas sharing one database: pool, schema, stores."""

from adapters.postgres.database import PostgresDatabase, open_postgres

__all__ = ["PostgresDatabase", "open_postgres"]
