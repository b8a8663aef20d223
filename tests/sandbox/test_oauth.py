"""The OAuth dance as a Fortnox client performs it, with plain httpx."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from sandbox.testing import SandboxHandle


def _authorize(sb: SandboxHandle, **extra: str) -> httpx.Response:
    params = {"client_id": sb.client_id, "redirect_uri": sb.redirect_uri,
              "scope": "companyinformation bookkeeping", "state": "xyz",
              "access_type": "offline", "response_type": "code", **extra}
    return httpx.get(f"{sb.auth_url}/auth", params=params, follow_redirects=False)


def _token(sb: SandboxHandle, auth: tuple[str, str] | None = None,
           **form: str) -> httpx.Response:
    return httpx.post(f"{sb.auth_url}/token", data=form,
                      auth=auth or (sb.client_id, sb.client_secret))


def _company(sb: SandboxHandle, access_token: str) -> httpx.Response:
    return httpx.get(f"{sb.api_url}/companyinformation",
                     headers={"Authorization": f"Bearer {access_token}"})


def test_full_dance_with_rotation_and_reuse_failure(sandbox: SandboxHandle) -> None:
    answer = _authorize(sandbox)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == sandbox.redirect_uri
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    code = query["code"][0]

    first = _token(sandbox, grant_type="authorization_code", code=code,
                   redirect_uri=sandbox.redirect_uri)
    assert first.status_code == 200
    pair = first.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 3600
    assert pair["scope"] == "companyinformation bookkeeping"
    company = _company(sandbox, pair["access_token"])
    assert company.status_code == 200
    assert company.json()["CompanyInformation"]["CompanyName"] == sandbox.tenants[0].name

    second = _token(sandbox, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] != pair["refresh_token"]
    reused = _token(sandbox, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    third = _token(sandbox, grant_type="refresh_token",
                   refresh_token=second.json()["refresh_token"])
    assert third.status_code == 200
    assert sandbox.stats()["tokens"][str(sandbox.tenants[0].id)]["refreshes"] == 2


def test_code_is_single_use_bound_to_redirect_and_expires(sandbox: SandboxHandle) -> None:
    code = sandbox.consent_code()
    wrong = _token(sandbox, grant_type="authorization_code", code=code,
                   redirect_uri=sandbox.redirect_uris[1])
    assert wrong.json()["error"] == "invalid_grant"
    ok = _token(sandbox, grant_type="authorization_code", code=code,
                redirect_uri=sandbox.redirect_uri)
    assert ok.status_code == 200
    again = _token(sandbox, grant_type="authorization_code", code=code,
                   redirect_uri=sandbox.redirect_uri)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"

    late = sandbox.consent_code()
    sandbox.advance_clock(601)
    expired = _token(sandbox, grant_type="authorization_code", code=late,
                     redirect_uri=sandbox.redirect_uri)
    assert expired.status_code == 400
    assert "expired" in expired.json()["error_description"]


def test_client_authentication_is_required(sandbox: SandboxHandle) -> None:
    code = sandbox.consent_code()
    bad = _token(sandbox, auth=(sandbox.client_id, "wrong"), grant_type="authorization_code",
                 code=code, redirect_uri=sandbox.redirect_uri)
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"
    assert "wrong" not in bad.text
    assert code not in bad.text
    none = httpx.post(f"{sandbox.auth_url}/token", data={"grant_type": "refresh_token"})
    assert none.status_code == 401
    odd = _token(sandbox, grant_type="password")
    assert odd.json()["error"] == "unsupported_grant_type"


def test_access_token_expires_with_the_clock(sandbox: SandboxHandle) -> None:
    pair = sandbox.tokens()
    assert _company(sandbox, pair["access_token"]).status_code == 200
    sandbox.advance_clock(3601)
    expired = _company(sandbox, pair["access_token"])
    assert expired.status_code == 401
    assert expired.json() == {"message": "unauthorized"}  # as recorded: no code
    refreshed = _token(sandbox, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert _company(sandbox, refreshed.json()["access_token"]).status_code == 200
    sandbox.advance_clock(45 * 86_400 + 1)
    dead = _token(sandbox, grant_type="refresh_token",
                  refresh_token=refreshed.json()["refresh_token"])
    assert dead.json()["error"] == "invalid_grant"


def test_jwt_names_the_tenant_and_tenant_choice(sandbox: SandboxHandle) -> None:
    import base64
    import json

    second = sandbox.tenants[1]
    pair = sandbox.tokens(second.id)
    payload = pair["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["tenantId"] == second.id
    company = _company(sandbox, pair["access_token"]).json()["CompanyInformation"]
    assert company["OrganizationNumber"] == second.organisation_number

    sandbox.set_consent_tenant(sandbox.tenants[2].id)
    third = _company(sandbox, sandbox.tokens()["access_token"]).json()
    assert third["CompanyInformation"]["CompanyName"] == sandbox.tenants[2].name


def test_invalidate_and_revoke(sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[0].id
    pair = sandbox.tokens()
    assert sandbox.invalidate_refresh_tokens(tenant) == 1
    dead = _token(sandbox, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert dead.json()["error"] == "invalid_grant"

    fresh = sandbox.tokens()
    revoked = httpx.post(f"{sandbox.auth_url}/revoke", data={"token": fresh["refresh_token"]},
                         auth=(sandbox.client_id, sandbox.client_secret))
    assert revoked.status_code == 200
    assert _company(sandbox, fresh["access_token"]).status_code == 401
    after = _token(sandbox, grant_type="refresh_token", refresh_token=fresh["refresh_token"])
    assert after.json()["error"] == "invalid_grant"


def test_authorize_errors_and_consent_page(sandbox: SandboxHandle) -> None:
    assert _authorize(sandbox, redirect_uri="http://evil.example/cb").status_code == 400
    assert _authorize(sandbox, client_id="nobody").status_code == 401
    bad_scope = parse_qs(urlsplit(_authorize(sandbox, scope="nonsense").headers["location"]).query)
    assert bad_scope["error"] == ["invalid_scope"]
    assert bad_scope["state"] == ["xyz"]
    denied = parse_qs(urlsplit(_authorize(sandbox, decision="deny").headers["location"]).query)
    assert denied["error"] == ["access_denied"]
    page = _authorize(sandbox, prompt="consent")
    assert page.status_code == 200
    assert "Godkänn" in page.text
    assert sandbox.tenants[0].name in page.text


def test_missing_scope_gives_fortnox_error(sandbox: SandboxHandle) -> None:
    token = sandbox.tokens(scopes=["bookkeeping"])["access_token"]
    answer = _company(sandbox, token)
    assert answer.status_code == 403
    assert answer.json()["ErrorInformation"]["code"] == 2000663
    garbage = _company(sandbox, "not-a-token")
    assert garbage.status_code == 401
    assert garbage.json() == {"message": "unauthorized"}
