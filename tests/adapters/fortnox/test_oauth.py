"""The OAuth flow against the sandbox: connect, states, refusals, disconnect, tokens at rest."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from opentelemetry import trace

from adapters.fortnox import FortnoxAdapter
from adapters.fortnox.oauth import OAuthClient, OAuthRefusal
from adapters.sqlite.connections import SqliteTokenStore
from core.clock import utc_now
from core.connections import ConnectionState
from core.errors import (
    CodeExchangeRefused,
    ConnectionNotFound,
    ConnectionRevoked,
    FortnoxAuthRejected,
    InvalidRequest,
    OAuthStateInvalid,
    StoredTokenUnreadable,
    WrongFortnoxCompany,
)
from sandbox.testing import SandboxHandle
from tests.adapters.fortnox.conftest import TENANT, MovableClock, token_stats
from tests.harness.connect import connect_adapter
from tests.harness.sandbox import FAST_RETRY


async def test_full_flow_connects_reads_and_disconnects(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    company = sandbox.tenants[1]
    request = await adapter.connections.begin_connect(
        TENANT, sandbox.redirect_uri, ("companyinformation", "bookkeeping"))
    query = parse_qs(urlsplit(request.url).query)
    assert request.url.startswith(f"{sandbox.auth_url}/auth?")
    assert query["client_id"] == [sandbox.client_id]
    assert query["state"] == [request.state]
    assert query["access_type"] == ["offline"]
    assert query["scope"] == ["companyinformation bookkeeping"]

    code = sandbox.consent_code(company.id, sandbox.redirect_uri,
                                ("companyinformation", "bookkeeping"), request.state)
    connection = await adapter.connections.complete_connect(request.state, code)
    assert connection.state is ConnectionState.CONNECTED
    assert connection.company_name == company.name
    assert connection.organisation_number == company.organisation_number
    assert connection.fortnox_tenant_id == str(company.id)
    assert connection.scopes == ("companyinformation", "bookkeeping")
    assert connection.access_token_expires_at is not None
    assert (await adapter.connections.get_connection(TENANT)) == connection

    years = await adapter.api.financial_years(TENANT)
    assert [y.id for y in years] == [y["id"] for y in company.financial_years]

    gone = await adapter.connections.disconnect(TENANT)
    assert gone.state is ConnectionState.REVOKED
    assert token_stats(sandbox)["revocations"] == 1
    with pytest.raises(ConnectionRevoked):
        await adapter.api.financial_years(TENANT)


async def test_state_is_single_use(adapter: FortnoxAdapter, sandbox: SandboxHandle) -> None:
    request = await adapter.connections.begin_connect(TENANT, sandbox.redirect_uri)
    code = sandbox.consent_code(None, sandbox.redirect_uri, state=request.state)
    await adapter.connections.complete_connect(request.state, code)
    with pytest.raises(OAuthStateInvalid) as used:
        await adapter.connections.complete_connect(request.state, code)
    assert used.value.reason == "OAUTH_STATE_USED"
    with pytest.raises(OAuthStateInvalid) as unknown:
        await adapter.connections.complete_connect("no-such-state", code)
    assert unknown.value.reason == "OAUTH_STATE_UNKNOWN"


async def test_state_expires_after_ten_minutes(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, clock: MovableClock
) -> None:
    request = await adapter.connections.begin_connect(TENANT, sandbox.redirect_uri)
    code = sandbox.consent_code(None, sandbox.redirect_uri, state=request.state)
    clock.advance(minutes=10, seconds=1)
    with pytest.raises(OAuthStateInvalid) as expired:
        await adapter.connections.complete_connect(request.state, code)
    assert expired.value.reason == "OAUTH_STATE_EXPIRED"


async def test_refused_code_stores_nothing(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    request = await adapter.connections.begin_connect(TENANT, sandbox.redirect_uri)
    with pytest.raises(CodeExchangeRefused) as refused:
        await adapter.connections.complete_connect(request.state, "not-a-code")
    assert refused.value.metadata["oauth_error"] == "invalid_grant"
    with pytest.raises(ConnectionNotFound):
        await adapter.connections.get_connection(TENANT)


async def test_login_into_another_company_is_refused_and_revoked(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    expected, actual = sandbox.tenants[0], sandbox.tenants[1]
    with pytest.raises(WrongFortnoxCompany):
        await connect_adapter(adapter, TENANT, company=actual.id,
                              expected_organisation_number=expected.organisation_number)
    with pytest.raises(ConnectionNotFound):
        await adapter.connections.get_connection(TENANT)
    assert token_stats(sandbox)["revocations"] == 1
    right = await connect_adapter(adapter, TENANT, company=expected.id,
                                  expected_organisation_number=expected.organisation_number)
    assert right.organisation_number == expected.organisation_number


async def test_unknown_redirect_uri_is_invalid(adapter: FortnoxAdapter) -> None:
    with pytest.raises(InvalidRequest) as invalid:
        await adapter.connections.begin_connect(TENANT, "https://evil.example/cb")
    assert invalid.value.violations[0].field == "redirect_uri"


async def test_tokens_are_encrypted_at_rest(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, store: SqliteTokenStore, tmp_path: Path
) -> None:
    await connect_adapter(adapter, TENANT)
    tokens = await store.current_tokens(TENANT)
    with sqlite3.connect(tmp_path / "bridge.sqlite3") as db:
        blobs = db.execute("SELECT access_token, refresh_token FROM connections").fetchone()
        dump = "\n".join(db.iterdump()).encode()
    for secret in (tokens.access_token, tokens.refresh_token):
        assert secret.encode() not in dump
        assert all(secret.encode() not in blob for blob in blobs)
    other = SqliteTokenStore(tmp_path / "bridge.sqlite3", bytes(32))
    try:
        with pytest.raises(StoredTokenUnreadable, match="cannot be decrypted"):
            await other.current_tokens(TENANT)
    finally:
        await other.aclose()


async def test_revoke_is_done_only_when_fortnox_says_revoked(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    """Fortnox answers 200 either way; the body's ``revoked`` tells."""
    pair = sandbox.tokens()
    assert await adapter.oauth.revoke("not-a-refresh-token", None) is False
    assert await adapter.oauth.revoke(pair["refresh_token"], None) is True


async def test_token_errors_labelled_as_html_or_text_are_read_as_json(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    """The token endpoint sends OAuth's JSON as text/html (400) or text/plain (401)."""
    with pytest.raises(OAuthRefusal) as refused:
        await adapter.oauth.refresh("spent-refresh-token", None)
    assert (refused.value.error, refused.value.status) == ("invalid_grant", 400)
    async with httpx.AsyncClient() as http:
        wrong_client = OAuthClient(
            http, auth_base_url=sandbox.auth_url, client_id=sandbox.client_id,
            client_secret="wrong", tracer=trace.get_tracer("test"), retry=FAST_RETRY,
            timeout_s=5, clock=utc_now, refresh_token_lifetime=timedelta(days=45))
        with pytest.raises(FortnoxAuthRejected) as rejected:
            await wrong_client.refresh(sandbox.tokens()["refresh_token"], None)
    assert rejected.value.metadata["oauth_error"] == "invalid_client"
