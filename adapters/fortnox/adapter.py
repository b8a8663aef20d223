"""Builds the Fortnox adapter from explicit settings: one ``httpx.AsyncClient`` shared by all."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from opentelemetry import trace

from adapters.fortnox import tracing
from adapters.fortnox.api import FortnoxClient
from adapters.fortnox.bodies import ACCEPT_ENCODING
from adapters.fortnox.connector import FortnoxConnector
from adapters.fortnox.limiter import RateWindow, SlidingWindowLimiter
from adapters.fortnox.oauth import OAuthClient
from adapters.fortnox.retry import RetryPolicy
from adapters.fortnox.tokens import TokenManager
from adapters.fortnox.transport import (
    CALL_TIMEOUT_S,
    DOWNLOAD_TIMEOUT_S,
    MAX_DOWNLOAD_BYTES,
    MAX_JSON_BYTES,
    Transport,
)
from core.clock import Clock, utc_now
from core.token_store import TokenStore

#: Idle connections are closed by us well before a server would close them (uvicorn's default
#: and many proxies' is 5 s, httpx's own expiry too). A request sent on a connection the server
#: is closing fails, costs a retry and a slot of the rate-limit window: under a 5 s window, idle
#: gaps of about 5 s are the rule, and this cost 1 request in 25.
KEEPALIVE_EXPIRY_S = 2.0


@dataclass(frozen=True)
class FortnoxSettings:
    """What the adapter is configured with (the composition root maps ``Settings`` to it)."""

    client_id: str
    client_secret: str = field(repr=False)
    api_base_url: str = "https://api.fortnox.se/3"
    auth_base_url: str = "https://apps.fortnox.se/oauth-v1"
    default_scopes: tuple[str, ...] = ("companyinformation", "bookkeeping")
    allowed_redirect_uris: tuple[str, ...] = ()
    rate_limit_requests: int = 25
    rate_limit_window_s: float = 5.0
    http_timeout_s: float = 30.0
    call_timeout_s: float = CALL_TIMEOUT_S
    download_timeout_s: float = DOWNLOAD_TIMEOUT_S
    max_json_bytes: int = MAX_JSON_BYTES
    max_download_bytes: int = MAX_DOWNLOAD_BYTES
    retry_attempts: int = 6
    retry_base_delay_s: float = 0.25
    retry_max_delay_s: float = 8.0
    refresh_margin: timedelta = timedelta(minutes=5)
    max_token_age: timedelta = timedelta(days=1)
    refresh_token_lifetime: timedelta = timedelta(days=45)
    state_ttl: timedelta = timedelta(minutes=10)
    max_connections: int = 200


class FortnoxAdapter:
    """The Fortnox side of the service: ``api`` (``FortnoxApi``) and ``connections``
    (``FortnoxConnections``). Close it (``aclose`` or ``async with``) to release the client."""

    def __init__(
        self,
        settings: FortnoxSettings,
        store: TokenStore,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        clock: Clock = utc_now,
        retry: RetryPolicy | None = None,
        rate_window: RateWindow | None = None,
    ) -> None:
        """``retry`` replaces the policy the settings describe (tests: shorter waits)."""
        self._http = httpx.AsyncClient(
            timeout=settings.http_timeout_s,
            limits=httpx.Limits(max_connections=settings.max_connections,
                                max_keepalive_connections=settings.max_connections,
                                keepalive_expiry=KEEPALIVE_EXPIRY_S),
            follow_redirects=False,
            # Only what ``bodies`` decompresses within its bound.
            headers={"Accept-Encoding": ACCEPT_ENCODING},
        )
        tracer = tracing.get_tracer(tracer_provider)
        retry = retry or RetryPolicy(max_attempts=settings.retry_attempts,
                                     base_delay_s=settings.retry_base_delay_s,
                                     max_delay_s=settings.retry_max_delay_s)
        self.oauth = OAuthClient(
            self._http,
            auth_base_url=settings.auth_base_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            tracer=tracer,
            retry=retry,
            timeout_s=settings.http_timeout_s,
            clock=clock,
            refresh_token_lifetime=settings.refresh_token_lifetime,
        )
        self.tokens = TokenManager(
            store,
            self.oauth,
            clock=clock,
            refresh_margin=settings.refresh_margin,
            max_token_age=settings.max_token_age,
            claim_lease=timedelta(seconds=settings.http_timeout_s + 5),
        )
        # ``rate_window`` shared in the database keeps every replica within one limit.
        self.limiter = SlidingWindowLimiter(
            settings.rate_limit_requests, settings.rate_limit_window_s, window=rate_window,
            stale_after_s=2 * settings.http_timeout_s + settings.rate_limit_window_s,
        )
        transport = Transport(
            self._http,
            api_base_url=settings.api_base_url,
            tokens=self.tokens,
            limiter=self.limiter,
            tracer=tracer,
            retry=retry,
            timeout_s=settings.http_timeout_s,
            call_timeout_s=settings.call_timeout_s,
            download_timeout_s=settings.download_timeout_s,
            max_json_bytes=settings.max_json_bytes,
            max_download_bytes=settings.max_download_bytes,
        )
        self.api = FortnoxClient(transport)
        self.connections = FortnoxConnector(
            store,
            self.oauth,
            self.tokens,
            transport,
            default_scopes=settings.default_scopes,
            allowed_redirect_uris=settings.allowed_redirect_uris,
            clock=clock,
            state_ttl=settings.state_ttl,
            limiter=self.limiter,
        )

    async def aclose(self) -> None:
        """Closes the shared HTTP client, once the rate window knows of every answer."""
        await self.limiter.aclose()
        await self._http.aclose()

    async def __aenter__(self) -> FortnoxAdapter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
