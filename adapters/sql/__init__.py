"""What the SQLite and PostgreSQL stores share: row types, statements, the token cipher."""
