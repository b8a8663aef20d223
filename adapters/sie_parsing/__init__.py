"""SIE files parsed in worker processes, so parsing has a core of its own beside the server's."""

from adapters.sie_parsing.pool import ProcessParsers

__all__ = ["ProcessParsers"]
