"""A wall clock that tests can move forward, so token and code expiry need no sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta


class SandboxClock:
    """Real UTC time plus an offset that only grows (``advance``) or is cleared (``reset``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._base_offset = (start - datetime.now(UTC)) if start else timedelta(0)
        self._offset = self._base_offset

    def now(self) -> datetime:
        """Current sandbox time (timezone-aware UTC)."""
        with self._lock:
            return datetime.now(UTC) + self._offset

    def today(self) -> date:
        """Current sandbox date; Fortnox's "today" for balances and overdue invoices."""
        return self.now().date()

    def timestamp(self) -> int:
        """Current sandbox time as integer seconds since the epoch (JWT ``iat``/``exp``)."""
        return int(self.now().timestamp())

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward and return the new time."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def reset(self) -> None:
        """Return to the start offset given at construction."""
        with self._lock:
            self._offset = self._base_offset
