"""Settings, read once from the environment at start-up and passed down explicitly.

Every variable is listed in the README. A bad or missing setting raises ``ConfigError`` whose
message names the variable and never echoes a secret's value.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SCOPES = (
    "companyinformation",
    "bookkeeping",
    "invoice",
    "customer",
    "supplier",
    "supplierinvoice",
    "payment",
    "archive",
    "connectfile",
    "settings",
    "costcenter",
    "project",
)


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


@dataclass(frozen=True)
class Address:
    """A ``HOST:PORT`` to listen on; port 0 picks a free one."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class TlsSettings:
    """Server certificate and key; with ``client_ca`` the server demands client certificates."""

    cert: bytes
    key: bytes = field(repr=False)
    client_ca: bytes | None


@dataclass(frozen=True)
class ConnectionAge:
    """How long a client connection may live, so clients balancing over a headless service
    re-resolve its addresses; calls running at the age get ``grace_s`` to finish, which covers
    the longest call (5,000 vouchers exported at Fortnox's 25 requests per 5 s: 17 minutes)."""

    max_age_s: float = 300.0
    grace_s: float = 1800.0


@dataclass(frozen=True)
class FeedSettings:
    """Fortnox's change feed: where it is, how the holder lease runs, how long changes are
    kept, how watches are bounded."""

    topics_url: str = "wss://ws.fortnox.se/topics-v1"
    lease_s: float = 10.0
    retention_days: float = 14.0
    poll_s: float = 0.5
    watch_max_days: float = 120.0
    watch_max_tenants: int = 2000


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with."""

    environment: str
    listen: Address
    db_path: Path
    database_url: str = field(repr=False)
    db_pool_size: int
    fortnox_client_id: str
    fortnox_client_secret: str = field(repr=False)
    fortnox_api_base_url: str
    fortnox_auth_base_url: str
    default_scopes: tuple[str, ...]
    allowed_redirect_uris: tuple[str, ...]
    closing_series: str
    token_key: bytes = field(repr=False)
    shutdown_grace_s: float
    tls: TlsSettings | None
    log_level: str
    log_format: str
    trace_console: bool
    otlp_endpoint: str
    import_stale_s: float
    sie_parsers: int
    rate_limit_requests: int
    rate_limit_window_s: float
    http_timeout_s: float
    http_call_timeout_s: float
    http_download_timeout_s: float
    max_json_bytes: int
    max_download_bytes: int
    http_retry_attempts: int
    http_retry_base_delay_s: float
    http_retry_max_delay_s: float
    connection_age: ConnectionAge
    keepalive_age_days: float = 30.0
    keepalive_interval_s: float = 3600.0
    feed: FeedSettings = field(default_factory=FeedSettings)
    clock_skew_warn_s: float = 5.0


def parse_address(value: str, name: str) -> Address:
    """Parses ``HOST:PORT`` (``[::]:50051`` for IPv6), naming ``name`` on error."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{name}: expected HOST:PORT with a port 0-65535, got {value!r}")
    return Address(host=host, port=int(port_text))


def _read_file(env: Mapping[str, str], name: str) -> bytes | None:
    path = env.get(name, "").strip()
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from exc


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from exc
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {raw!r}")
    return value


def _token_key(env: Mapping[str, str], production: bool) -> bytes:
    raw = env.get("FORTNOX_TOKEN_KEY", "").strip()
    if not raw:
        if production:
            raise ConfigError(
                "FORTNOX_TOKEN_KEY: required in production (32 bytes, base64) to encrypt tokens"
            )
        raise ConfigError(
            "FORTNOX_TOKEN_KEY: not set; `make run` generates a development key, "
            "or set FORTNOX_BRIDGE_ENV=production with a real key"
        )
    try:
        key = base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        raise ConfigError("FORTNOX_TOKEN_KEY: not valid base64") from exc
    if len(key) != 32:
        raise ConfigError(f"FORTNOX_TOKEN_KEY: must decode to 32 bytes, got {len(key)}")
    return key


def _tls(env: Mapping[str, str]) -> TlsSettings | None:
    cert = _read_file(env, "FORTNOX_BRIDGE_TLS_CERT")
    key = _read_file(env, "FORTNOX_BRIDGE_TLS_KEY")
    client_ca = _read_file(env, "FORTNOX_BRIDGE_TLS_CLIENT_CA")
    if cert is None and key is None:
        if client_ca is not None:
            raise ConfigError(
                "FORTNOX_BRIDGE_TLS_CLIENT_CA: needs FORTNOX_BRIDGE_TLS_CERT and _KEY"
            )
        return None
    if cert is None:
        raise ConfigError("FORTNOX_BRIDGE_TLS_CERT: required when FORTNOX_BRIDGE_TLS_KEY is set")
    if key is None:
        raise ConfigError("FORTNOX_BRIDGE_TLS_KEY: required when FORTNOX_BRIDGE_TLS_CERT is set")
    return TlsSettings(cert=cert, key=key, client_ca=client_ca)


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def _database_url(env: Mapping[str, str]) -> str:
    """A PostgreSQL URL, or "" for the embedded SQLite file at ``FORTNOX_BRIDGE_DB_PATH``."""
    url = env.get("FORTNOX_BRIDGE_DATABASE_URL", "").strip()
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("FORTNOX_BRIDGE_DATABASE_URL: expected a postgresql:// URL or nothing"
                          " (nothing: SQLite at FORTNOX_BRIDGE_DB_PATH)")
    return url


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Reads and validates every setting from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    environment = _choice(
        env, "FORTNOX_BRIDGE_ENV", "production", ("production", "development")
    )
    production = environment == "production"
    client_id = env.get("FORTNOX_CLIENT_ID", "").strip()
    client_secret = env.get("FORTNOX_CLIENT_SECRET", "").strip()
    if not client_id:
        raise ConfigError("FORTNOX_CLIENT_ID: required (the Fortnox integration's client id)")
    if not client_secret:
        raise ConfigError("FORTNOX_CLIENT_SECRET: required (the Fortnox integration's secret)")
    scopes = tuple(env.get("FORTNOX_DEFAULT_SCOPES", "").split()) or DEFAULT_SCOPES
    redirect_uris = tuple(env.get("FORTNOX_REDIRECT_URIS", "").split())
    if production and not redirect_uris:
        raise ConfigError("FORTNOX_REDIRECT_URIS: required in production (space-separated)")
    series = env.get("FORTNOX_CLOSING_SERIES", "I").strip() or "I"
    keepalive_age = _number(env, "FORTNOX_BRIDGE_KEEPALIVE_AGE_DAYS", 30.0, 1.0)
    retry_base = _number(env, "FORTNOX_HTTP_RETRY_BASE_DELAY_S", 0.25, 0.0)
    retry_max = _number(env, "FORTNOX_HTTP_RETRY_MAX_DELAY_S", 8.0, 0.0)
    if retry_max < retry_base:
        raise ConfigError("FORTNOX_HTTP_RETRY_MAX_DELAY_S: must be at least"
                          f" FORTNOX_HTTP_RETRY_BASE_DELAY_S ({retry_base:g}), got {retry_max:g}")
    if keepalive_age > 40:
        raise ConfigError("FORTNOX_BRIDGE_KEEPALIVE_AGE_DAYS: at most 40, so a renewal that"
                          " fails for now is tried again before the 45 days are up")
    return Settings(
        environment=environment,
        listen=parse_address(
            env.get("FORTNOX_BRIDGE_LISTEN", "").strip() or "[::]:50051", "FORTNOX_BRIDGE_LISTEN"
        ),
        db_path=Path(env.get("FORTNOX_BRIDGE_DB_PATH", "").strip() or "fortnox-bridge.sqlite3"),
        database_url=_database_url(env),
        db_pool_size=int(_number(env, "FORTNOX_BRIDGE_DB_POOL_SIZE", 20, 2)),
        fortnox_client_id=client_id,
        fortnox_client_secret=client_secret,
        fortnox_api_base_url=(
            env.get("FORTNOX_API_BASE_URL", "").strip() or "https://api.fortnox.se/3"
        ).rstrip("/"),
        fortnox_auth_base_url=(
            env.get("FORTNOX_AUTH_BASE_URL", "").strip() or "https://apps.fortnox.se/oauth-v1"
        ).rstrip("/"),
        default_scopes=scopes,
        allowed_redirect_uris=redirect_uris,
        closing_series=series,
        token_key=_token_key(env, production),
        shutdown_grace_s=_number(env, "FORTNOX_BRIDGE_SHUTDOWN_GRACE_S", 10.0, 0.0),
        tls=_tls(env),
        log_level=_choice(
            env, "FORTNOX_BRIDGE_LOG_LEVEL", "info", ("debug", "info", "warning", "error")
        ),
        log_format=_choice(env, "FORTNOX_BRIDGE_LOG_FORMAT", "json", ("json", "text")),
        trace_console=_choice(env, "FORTNOX_BRIDGE_TRACE_CONSOLE", "0", ("0", "1")) == "1",
        otlp_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip(),
        import_stale_s=_number(env, "FORTNOX_BRIDGE_IMPORT_STALE_S", 60.0, 1.0),
        sie_parsers=int(_number(env, "FORTNOX_BRIDGE_SIE_PARSERS", os.cpu_count() or 2, 1)),
        rate_limit_requests=int(_number(env, "FORTNOX_RATE_LIMIT_REQUESTS", 25, 1)),
        rate_limit_window_s=_number(env, "FORTNOX_RATE_LIMIT_WINDOW_S", 5.0, 0.01),
        http_timeout_s=_number(env, "FORTNOX_HTTP_TIMEOUT_S", 30.0, 0.1),
        http_call_timeout_s=_number(env, "FORTNOX_CALL_TIMEOUT_S", 120.0, 0.1),
        http_download_timeout_s=_number(env, "FORTNOX_DOWNLOAD_TIMEOUT_S", 3600.0, 0.1),
        max_json_bytes=int(_number(env, "FORTNOX_MAX_JSON_BYTES", 16 * 1024 * 1024, 1024)),
        max_download_bytes=int(_number(env, "FORTNOX_MAX_DOWNLOAD_BYTES", 4 * 1024**3, 1024)),
        http_retry_attempts=int(_number(env, "FORTNOX_HTTP_RETRY_ATTEMPTS", 6, 1)),
        http_retry_base_delay_s=retry_base,
        http_retry_max_delay_s=retry_max,
        connection_age=ConnectionAge(
            max_age_s=_number(env, "FORTNOX_BRIDGE_MAX_CONNECTION_AGE_S", 300.0, 0.1),
            grace_s=_number(env, "FORTNOX_BRIDGE_MAX_CONNECTION_AGE_GRACE_S", 1800.0, 0.0),
        ),
        keepalive_age_days=keepalive_age,
        keepalive_interval_s=_number(env, "FORTNOX_BRIDGE_KEEPALIVE_INTERVAL_S", 3600.0, 0.1),
        clock_skew_warn_s=_number(env, "FORTNOX_BRIDGE_CLOCK_SKEW_WARN_S", 5.0, 0.0),
        feed=_feed(env),
    )


def _feed(env: Mapping[str, str]) -> FeedSettings:
    url = env.get("FORTNOX_TOPICS_URL", "").strip() or "wss://ws.fortnox.se/topics-v1"
    if not url.startswith(("wss://", "ws://")):
        raise ConfigError(f"FORTNOX_TOPICS_URL: expected a wss:// (or ws://) URL, got {url!r}")
    return FeedSettings(
        topics_url=url,
        lease_s=_number(env, "FORTNOX_BRIDGE_FEED_LEASE_S", 10.0, 1.0),
        retention_days=_number(env, "FORTNOX_BRIDGE_FEED_RETENTION_DAYS", 14.0, 0.001),
        poll_s=_number(env, "FORTNOX_BRIDGE_FEED_POLL_S", 0.5, 0.01),
        watch_max_days=_number(env, "FORTNOX_BRIDGE_WATCH_MAX_DAYS", 120.0, 0.001),
        watch_max_tenants=int(_number(env, "FORTNOX_BRIDGE_WATCH_MAX_TENANTS", 2000, 1)),
    )
