"""The outside world behind the core's ports: Fortnox over HTTP, state in SQLite."""
