"""Everything one running sandbox holds, shared by its HTTP routes and control endpoints."""

from __future__ import annotations

import threading
from collections import Counter

from sandbox.books import Books
from sandbox.clock import SandboxClock
from sandbox.faults import FaultBook
from sandbox.model import Tenant
from sandbox.options import SandboxOptions
from sandbox.ratelimit import SlidingWindowLimiter
from sandbox.seed import build_all
from sandbox.sie_cache import SieExportCache
from sandbox.tokens import TokenAuthority
from sandbox.topics_commands import FeedHub
from sandbox.topics_log import TopicLog


class SandboxState:
    """The seeded companies plus OAuth, rate-limit, fault and clock state."""

    def __init__(self, options: SandboxOptions, clock: SandboxClock | None = None) -> None:
        self.options = options
        self.clock = clock or SandboxClock()
        self.books: dict[int, Books] = {b.tenant.id: b for b in build_all(options)}
        self.tokens = TokenAuthority(options, self.clock, issuer="fortnox-sandbox")
        self.limiter = SlidingWindowLimiter(options.rate_limit, options.rate_window_seconds)
        self.faults = FaultBook()
        self.sie_exports = SieExportCache()
        self.topic_log = TopicLog(self.clock)
        self.topic_hub = FeedHub()
        self.consent_tenant: int | None = None
        self.requests: Counter[tuple[int, int]] = Counter()
        self._lock = threading.Lock()

    def tenants(self) -> list[Tenant]:
        """The seeded companies in seed order."""
        return [b.tenant for b in self.books.values()]

    def consenting_tenant(self, requested: int | None, login: str | None = None) -> int:
        """Whose company consents on ``/oauth-v1/auth``: the requested, the one of the user
        logging in, the configured, or the first; ``KeyError`` if the user is not in it."""
        if login is not None:
            owner = next((t.id for t in self.tenants() if t.user(login) is not None), None)
            if owner is None or requested not in (None, owner):
                raise KeyError(login)
            requested = owner
        for candidate in (requested, self.consent_tenant):
            if candidate is not None:
                if candidate not in self.books:
                    raise KeyError(candidate)
                return candidate
        return next(iter(self.books))

    def count_request(self, tenant_id: int, status: int) -> None:
        """Tally an answered API request per tenant and status."""
        with self._lock:
            self.requests[(tenant_id, status)] += 1

    def reset(self) -> None:
        """Back to freshly seeded data, no tokens, no faults, clock at its start."""
        self.books = {b.tenant.id: b for b in build_all(self.options)}
        self.tokens.reset()
        self.limiter.reset()
        self.limiter.configure(self.options.rate_limit, self.options.rate_window_seconds)
        self.faults.remove()
        self.clock.reset()
        self.consent_tenant = None
        self.topic_log.clear()
        self.topic_hub.drop()
        self.topic_hub.clear()
        with self._lock:
            self.requests.clear()
