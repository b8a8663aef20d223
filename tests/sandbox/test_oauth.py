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


def _client_credentials(sandbox: SandboxHandle, tenant_id: object | None) -> httpx.Response:
    headers = {} if tenant_id is None else {"TenantId": str(tenant_id)}
    return httpx.post(f"{sandbox.auth_url}/token", data={"grant_type": "client_credentials"},
                      headers=headers, auth=(sandbox.client_id, sandbox.client_secret))


def test_service_account_consent_then_client_credentials(sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[1]
    assert _client_credentials(sandbox, company.id).json()["error"] == "invalid_grant"
    code = sandbox.consent_code(company.id, service=True, user=company.administrator)
    first = _token(sandbox, grant_type="authorization_code", code=code,
                   redirect_uri=sandbox.redirect_uri).json()
    assert first["access_token"] and first["refresh_token"]  # both, as Fortnox documents
    assert first["expires_in"] == 3600

    for header in (company.id, 90_000 + company.id):  # tenant id or database number
        answer = _client_credentials(sandbox, header)
        assert answer.status_code == 200
        body = answer.json()
        assert list(body) == ["access_token", "expires_in", "token_type", "scope"]
        info = _company(sandbox, body["access_token"]).json()["CompanyInformation"]
        assert info["OrganizationNumber"] == company.organisation_number
    assert sandbox.stats()["tokens"][str(company.id)]["client_credentials"] == 2

    missing = _client_credentials(sandbox, None)
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    unknown = _client_credentials(sandbox, 4711)
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_request")
    assert "TenantId" in unknown.json()["error_description"]
    unconsented = _client_credentials(sandbox, sandbox.tenants[0].id)
    assert (unconsented.status_code, unconsented.json()["error"]) == (400, "invalid_grant")


def test_only_an_administrator_gives_a_service_consent(sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    refused = _authorize(sandbox, account_type="service", user=company.ordinary_user)
    query = parse_qs(urlsplit(refused.headers["location"]).query)
    assert query["error"] == ["access_denied"]
    assert "administrator" in query["error_description"][0]
    assert query["state"] == ["xyz"]
    # the ordinary user may still connect an integration as a user
    assert "code" in parse_qs(urlsplit(
        _authorize(sandbox, user=company.ordinary_user).headers["location"]).query)
    assert _authorize(sandbox, user="nobody").status_code == 400
    assert _authorize(sandbox, user=company.ordinary_user,
                      tenant=str(sandbox.tenants[1].id)).status_code == 400
    assert sandbox.state.tokens.service_consents() == []


def test_revoked_service_consent(sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    code = sandbox.consent_code(company.id, service=True, user=company.administrator)
    _token(sandbox, grant_type="authorization_code", code=code, redirect_uri=sandbox.redirect_uri)
    access = _client_credentials(sandbox, company.id).json()["access_token"]
    assert sandbox.revoke_service_consent(company.id) == 1
    assert _company(sandbox, access).status_code == 401
    refused = _client_credentials(sandbox, company.id)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    assert "revoked" in refused.json()["error_description"]
    assert sandbox.stats()["tokens"][str(company.id)]["client_credentials_rejected"] == 1
