"""Builds the Fortnox adapter from the service's settings: one ``httpx.AsyncClient`` shared by
all."""

from __future__ import annotations

from datetime import timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Protocol
from urllib.request import getproxies

import httpx
from opentelemetry import trace

from adapters.fortnox import tracing
from adapters.fortnox.api import FortnoxClient
from adapters.fortnox.bodies import ACCEPT_ENCODING
from adapters.fortnox.limiter import RateWindow, SlidingWindowLimiter
from adapters.fortnox.login import FortnoxLogin
from adapters.fortnox.oauth import OAuthClient
from adapters.fortnox.pools import SplitPools
from adapters.fortnox.retry import RetryPolicy
from adapters.fortnox.tokens import TokenManager
from adapters.fortnox.transport import Transport
from core.clock import Clock, utc_now
from core.connecting import Connecting
from core.token_store import TokenStore

#: Idle connections are closed by us well before a server would close them (uvicorn's default
#: and many proxies' is 5 s, httpx's own expiry too). A request sent on a connection the server
#: is closing fails, costs a retry and a slot of the rate-limit window: under a 5 s window, idle
#: gaps of about 5 s are the rule, and this cost 1 request in 25.
KEEPALIVE_EXPIRY_S = 2.0


#: What the adapter keeps to of Fortnox's OAuth, not settings: a token is renewed this long
#: before it expires, and once it is this old whatever its expiry (Fortnox's daily rule); a
#: refresh token lapses unused after this long, an authorization (its state) after this long.
REFRESH_MARGIN = timedelta(minutes=5)
MAX_TOKEN_AGE = timedelta(days=1)
REFRESH_TOKEN_LIFETIME = timedelta(days=45)
STATE_TTL = timedelta(minutes=10)
#: Connections to Fortnox at most, for every tenant together.
MAX_CONNECTIONS = 200


class FortnoxSettings(Protocol):
    """What the adapter reads of the service's settings: a view of ``server.config.Settings``
    (which the composition root passes as it is), with no defaults of its own. Each default is
    stated once, where ``server.config`` reads its variable; the README lists them."""

    @property
    def fortnox_client_id(self) -> str: ...
    @property
    def fortnox_client_secret(self) -> str: ...
    @property
    def fortnox_api_base_url(self) -> str: ...
    @property
    def fortnox_auth_base_url(self) -> str: ...
    @property
    def default_scopes(self) -> tuple[str, ...]: ...
    @property
    def allowed_redirect_uris(self) -> tuple[str, ...]: ...
    @property
    def rate_limit_requests(self) -> int: ...
    @property
    def rate_limit_window_s(self) -> float: ...
    @property
    def http_timeout_s(self) -> float: ...
    @property
    def http_call_timeout_s(self) -> float: ...
    @property
    def http_download_timeout_s(self) -> float: ...
    @property
    def max_json_bytes(self) -> int: ...
    @property
    def max_download_bytes(self) -> int: ...
    @property
    def http_retry_attempts(self) -> int: ...
    @property
    def http_retry_base_delay_s(self) -> float: ...
    @property
    def http_retry_max_delay_s(self) -> float: ...


def retry_policy(settings: FortnoxSettings) -> RetryPolicy:
    """The retry policy the settings describe."""
    return RetryPolicy(max_attempts=settings.http_retry_attempts,
                       base_delay_s=settings.http_retry_base_delay_s,
                       max_delay_s=settings.http_retry_max_delay_s)


class FortnoxAdapter:
    """The Fortnox side of the service: ``api`` (``FortnoxApi``), ``login`` (``FortnoxOAuth``)
    and ``tokens``; ``connections`` is ``core.connecting.Connecting`` over ``login`` and the
    store given, for tests and tools that hold only an adapter (the service's own is built by
    ``server.wiring``). Close it (``aclose`` or ``async with``) to release the client."""

    def __init__(
        self,
        settings: FortnoxSettings,
        store: TokenStore,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        clock: Clock = utc_now,
        retry: RetryPolicy | None = None,
        rate_window: RateWindow | None = None,
        max_token_age: timedelta = MAX_TOKEN_AGE,
    ) -> None:
        """``retry`` replaces the policy the settings describe, ``max_token_age`` Fortnox's
        daily rule (tests: shorter waits, an earlier renewal)."""
        # A proxy the environment names is httpx's to route through (given a transport of
        # ours, it would ignore the environment and go around the proxy); else our pools.
        # ``limits`` bound the connections the client makes itself, only where none are ours.
        pools = None if getproxies() else SplitPools(MAX_CONNECTIONS, KEEPALIVE_EXPIRY_S)
        self._http = httpx.AsyncClient(
            timeout=settings.http_timeout_s,
            transport=pools,
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS,
                                keepalive_expiry=KEEPALIVE_EXPIRY_S),
            follow_redirects=False,
            # Only what ``bodies`` decompresses within its bound.
            headers={"Accept-Encoding": ACCEPT_ENCODING},
            # No cookie an answer sets goes with a later call: it could be another tenant's.
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
        )
        tracer = tracing.get_tracer(tracer_provider)
        retry = retry or retry_policy(settings)
        self.oauth = OAuthClient(
            self._http,
            auth_base_url=settings.fortnox_auth_base_url,
            client_id=settings.fortnox_client_id,
            client_secret=settings.fortnox_client_secret,
            tracer=tracer,
            retry=retry,
            timeout_s=settings.http_timeout_s,
            clock=clock,
            refresh_token_lifetime=REFRESH_TOKEN_LIFETIME,
        )
        self.tokens = TokenManager(
            store,
            self.oauth,
            clock=clock,
            refresh_margin=REFRESH_MARGIN,
            max_token_age=max_token_age,
            claim_lease=timedelta(seconds=settings.http_timeout_s + 5),
        )
        # ``rate_window`` shared in the database keeps every replica within one limit.
        self.limiter = SlidingWindowLimiter(
            settings.rate_limit_requests, settings.rate_limit_window_s, window=rate_window,
            stale_after_s=2 * settings.http_timeout_s + settings.rate_limit_window_s,
        )
        transport = Transport(
            self._http,
            pools=pools,
            api_base_url=settings.fortnox_api_base_url,
            tokens=self.tokens,
            limiter=self.limiter,
            tracer=tracer,
            retry=retry,
            timeout_s=settings.http_timeout_s,
            call_timeout_s=settings.http_call_timeout_s,
            download_timeout_s=settings.http_download_timeout_s,
            max_json_bytes=settings.max_json_bytes,
            max_download_bytes=settings.max_download_bytes,
        )
        self.api = FortnoxClient(transport)
        self.login = FortnoxLogin(self.oauth, self.tokens, transport, state_lifetime=STATE_TTL,
                                  limiter=self.limiter)
        self.connections = Connecting(store, self.login, default_scopes=settings.default_scopes,
                                      allowed_redirect_uris=settings.allowed_redirect_uris,
                                      clock=clock)

    async def aclose(self) -> None:
        """Closes the shared HTTP client, once the rate window knows of every answer."""
        await self.limiter.aclose()
        await self._http.aclose()

    async def __aenter__(self) -> FortnoxAdapter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
