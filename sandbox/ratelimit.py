"""Fortnox's rate limit: a sliding window of N requests per W seconds per (client, tenant)."""

from __future__ import annotations

import threading
import time
from collections import deque


class SlidingWindowLimiter:
    """Admits a request when fewer than ``limit`` were admitted in the last ``window`` seconds.

    Uses the monotonic clock (not the sandbox clock) so that tests with short windows behave
    like real time. Rejected requests are not counted, as a window log does.
    """

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit, self.window = limit, window_seconds
        self._lock = threading.Lock()
        self._log: dict[tuple[str, int], deque[float]] = {}

    def configure(self, limit: int, window_seconds: float) -> None:
        """Change the limit at run time (keeps the request log)."""
        with self._lock:
            self.limit, self.window = limit, window_seconds

    def admit(self, client_id: str, tenant_id: int) -> bool:
        """Record and admit a request, or refuse it (HTTP 429)."""
        now = time.monotonic()
        with self._lock:
            log = self._log.setdefault((client_id, tenant_id), deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            if len(log) >= self.limit:
                return False
            log.append(now)
            return True

    def reset(self) -> None:
        """Forget every request."""
        with self._lock:
            self._log.clear()
