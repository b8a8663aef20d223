"""Settings: defaults, validation, and secrets kept out of messages and reprs."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from adapters.fortnox.adapter import retry_policy
from adapters.fortnox.retry import RetryPolicy
from server.config import ConfigError, load_settings, parse_address

KEY = base64.b64encode(b"k" * 32).decode()
BASE = {
    "FORTNOX_CLIENT_ID": "client",
    "FORTNOX_CLIENT_SECRET": "super-secret-value",
    "FORTNOX_TOKEN_KEY": KEY,
    "FORTNOX_REDIRECT_URIS": "https://app.example/callback",
}


def test_production_defaults() -> None:
    settings = load_settings(BASE)
    assert settings.environment == "production"
    assert str(settings.listen) == "[::]:50051"
    assert settings.fortnox_api_base_url == "https://api.fortnox.se/3"
    assert settings.fortnox_auth_base_url == "https://apps.fortnox.se/oauth-v1"
    assert settings.closing_series == "I"
    assert "bookkeeping" in settings.default_scopes
    assert {"connectfile", "archive"} <= set(settings.default_scopes)  # voucher documents
    assert (settings.rate_limit_requests, settings.rate_limit_window_s) == (25, 5.0)
    assert settings.tls is None


def test_secrets_do_not_show_in_repr() -> None:
    text = repr(load_settings(BASE))
    assert "super-secret-value" not in text
    assert KEY not in text


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"FORTNOX_CLIENT_ID": ""}, "FORTNOX_CLIENT_ID"),
        ({"FORTNOX_TOKEN_KEY": ""}, "FORTNOX_TOKEN_KEY"),
        ({"FORTNOX_TOKEN_KEY": "not base64!"}, "FORTNOX_TOKEN_KEY"),
        ({"FORTNOX_TOKEN_KEY": base64.b64encode(b"short").decode()}, "FORTNOX_TOKEN_KEY"),
        ({"FORTNOX_REDIRECT_URIS": ""}, "FORTNOX_REDIRECT_URIS"),
        ({"FORTNOX_BRIDGE_ENV": "staging"}, "FORTNOX_BRIDGE_ENV"),
        ({"FORTNOX_BRIDGE_SHUTDOWN_GRACE_S": "-1"}, "FORTNOX_BRIDGE_SHUTDOWN_GRACE_S"),
        ({"FORTNOX_BRIDGE_TLS_KEY": "/nonexistent.key"}, "FORTNOX_BRIDGE_TLS_KEY"),
        ({"FORTNOX_HTTP_RETRY_ATTEMPTS": "0"}, "FORTNOX_HTTP_RETRY_ATTEMPTS"),
        ({"FORTNOX_HTTP_RETRY_ATTEMPTS": "many"}, "FORTNOX_HTTP_RETRY_ATTEMPTS"),
        ({"FORTNOX_HTTP_RETRY_BASE_DELAY_S": "-0.1"}, "FORTNOX_HTTP_RETRY_BASE_DELAY_S"),
        ({"FORTNOX_HTTP_RETRY_BASE_DELAY_S": "nan"}, "FORTNOX_HTTP_RETRY_BASE_DELAY_S"),
        ({"FORTNOX_HTTP_RETRY_MAX_DELAY_S": "inf"}, "FORTNOX_HTTP_RETRY_MAX_DELAY_S"),
        ({"FORTNOX_HTTP_RETRY_MAX_DELAY_S": "0.1"}, "FORTNOX_HTTP_RETRY_MAX_DELAY_S"),
        ({"FORTNOX_CALL_TIMEOUT_S": "0"}, "FORTNOX_CALL_TIMEOUT_S"),
        ({"FORTNOX_DOWNLOAD_TIMEOUT_S": "inf"}, "FORTNOX_DOWNLOAD_TIMEOUT_S"),
        ({"FORTNOX_MAX_JSON_BYTES": "12"}, "FORTNOX_MAX_JSON_BYTES"),
        ({"FORTNOX_MAX_DOWNLOAD_BYTES": "lots"}, "FORTNOX_MAX_DOWNLOAD_BYTES"),
    ],
)
def test_invalid_settings_name_the_variable(override: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, **override})
    assert str(caught.value).startswith(named)
    assert "super-secret-value" not in str(caught.value)


def test_tls_needs_both_certificate_and_key(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("cert")
    with pytest.raises(ConfigError, match="FORTNOX_BRIDGE_TLS_KEY"):
        load_settings({**BASE, "FORTNOX_BRIDGE_TLS_CERT": str(cert)})


@pytest.mark.parametrize("value", ["50051", "host:", ":80", "host:65536", "host:port"])
def test_bad_addresses_are_refused(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_address(value, "X")


def test_ipv6_address_keeps_its_brackets() -> None:
    assert str(parse_address("[::1]:0", "X")) == "[::1]:0"


def test_retry_policy_defaults_and_overrides() -> None:
    defaults = load_settings(BASE)
    assert (defaults.http_retry_attempts, defaults.http_retry_base_delay_s,
            defaults.http_retry_max_delay_s) == (6, 0.25, 8.0)
    tuned = load_settings({**BASE, "FORTNOX_HTTP_RETRY_ATTEMPTS": "3",
                           "FORTNOX_HTTP_RETRY_BASE_DELAY_S": "0.5",
                           "FORTNOX_HTTP_RETRY_MAX_DELAY_S": "2"})
    assert (tuned.http_retry_attempts, tuned.http_retry_base_delay_s,
            tuned.http_retry_max_delay_s) == (3, 0.5, 2.0)
    assert retry_policy(tuned) == RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=2.0)



def test_fortnox_answer_bounds_defaults_and_overrides() -> None:
    """The bounds on what Fortnox sends, as the adapter reads them (its settings are the
    service's): sizes after decompression, and the time of a call and of a download."""
    adapter = load_settings(BASE)
    assert (adapter.max_json_bytes, adapter.max_download_bytes) == (16 * 2**20, 4 * 2**30)
    assert (adapter.http_call_timeout_s, adapter.http_download_timeout_s) == (120.0, 3600.0)
    adapter = load_settings({
        **BASE, "FORTNOX_MAX_JSON_BYTES": "1048576", "FORTNOX_MAX_DOWNLOAD_BYTES": "2048",
        "FORTNOX_CALL_TIMEOUT_S": "7.5", "FORTNOX_DOWNLOAD_TIMEOUT_S": "60"})
    assert (adapter.max_json_bytes, adapter.max_download_bytes) == (2**20, 2048)
    assert (adapter.http_call_timeout_s, adapter.http_download_timeout_s) == (7.5, 60.0)
