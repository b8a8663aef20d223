"""``/oauth-v1/``: authorization (auto-consent or an HTML page), token and revoke endpoints.

``/oauth-v1/auth`` logs in as the company's administrator unless ``user=<login>`` names
another of its users; ``account_type=service`` asks for a service-account consent, which only
an administrator may give (anyone else is sent back with ``access_denied``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import html
import json
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.api_common import LostAnswer
from sandbox.state import SandboxState
from sandbox.tokens import GrantError

NOT_ADMINISTRATOR = ("Only a system administrator of the company can activate an integration"
                     " as a service account.")


def _oauth_error(error: GrantError) -> Response:
    """OAuth's error JSON, labelled as Fortnox labels it: ``text/plain`` on a 401,
    ``text/html`` otherwise (as recorded; clients must parse by body)."""
    media_type = "text/plain;charset=UTF-8" if error.status == 401 else "text/html; charset=UTF-8"
    body = json.dumps({"error": error.error, "error_description": error.description})
    return Response(body, status_code=error.status, media_type=media_type,
                    headers={"Cache-Control": "no-store"})


def _redirect(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)


def _basic_client(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise GrantError("invalid_client", "HTTP Basic client authentication is required.", 401)
    try:
        client_id, _, secret = base64.b64decode(value).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise GrantError("invalid_client", "Malformed Basic credentials.", 401) from exc
    return client_id, secret


def _tenant_of(state: SandboxState, header: str | None) -> int:
    """The company a ``TenantId`` header names: its tenant id or its database number."""
    if not header or not header.strip():
        raise GrantError("invalid_request", "The TenantId header is missing.")
    for tenant in state.tenants():
        if header.strip() in (str(tenant.id), str(tenant.database_number)):
            return tenant.id
    raise GrantError("invalid_request", "Unknown TenantId.")


def _consent_page(request: Request, tenant_name: str, scopes: tuple[str, ...]) -> HTMLResponse:
    base = {k: v for k, v in request.query_params.items() if k != "prompt"}
    allow = html.escape(f"{request.url.path}?{urlencode({**base, 'decision': 'allow'})}")
    deny = html.escape(f"{request.url.path}?{urlencode({**base, 'decision': 'deny'})}")
    items = "".join(f"<li>{html.escape(s)}</li>" for s in scopes)
    return HTMLResponse(
        "<!doctype html><html lang='sv'><meta charset='utf-8'><title>Fortnox sandbox</title>"
        f"<h1>Koppla integration till {html.escape(tenant_name)}?</h1>"
        f"<p>Integrationen begär behörighet till:</p><ul>{items}</ul>"
        f"<p><a href=\"{allow}\">Godkänn</a> · <a href=\"{deny}\">Avbryt</a></p></html>")


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the only form OAuth uses)."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace")))


def routes(state: SandboxState) -> list[Route]:
    """The OAuth routes bound to ``state``."""

    async def authorize(request: Request) -> Response:
        q = request.query_params
        redirect_uri = q.get("redirect_uri", "")
        try:
            state.tokens.check_client(q.get("client_id", ""))
        except GrantError as exc:
            return _oauth_error(exc)
        if redirect_uri not in state.options.redirect_uris:
            return _oauth_error(GrantError("invalid_request", "redirect_uri is not registered."))
        callback = {"state": q["state"]} if "state" in q else {}
        if q.get("response_type", "code") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", **callback})
        try:
            scopes = state.tokens.parse_scopes(q.get("scope", ""))
            tenant = state.books[state.consenting_tenant(
                int(q["tenant"]) if "tenant" in q else None, q.get("user"))].tenant
        except GrantError as exc:
            return _redirect(redirect_uri, {"error": exc.error,
                                            "error_description": exc.description, **callback})
        except (KeyError, ValueError):
            return _oauth_error(GrantError("invalid_request", "Unknown sandbox tenant or user."))
        user = tenant.user(q.get("user"))
        assert user is not None  # consenting_tenant found it
        if q.get("decision") == "deny":
            return _redirect(redirect_uri, {"error": "access_denied",
                                            "error_description": "The user declined.", **callback})
        service = q.get("account_type") == "service"
        if service and not user.administrator:
            return _redirect(redirect_uri, {"error": "access_denied",
                                            "error_description": NOT_ADMINISTRATOR, **callback})
        if q.get("prompt") == "consent" and q.get("decision") != "allow":
            return _consent_page(request, tenant.name, scopes)
        code = state.tokens.issue_code(q["client_id"], redirect_uri, scopes, tenant.id,
                                       service_by=user.login if service else "")
        return _redirect(redirect_uri, {"code": code, **callback})

    async def token(request: Request) -> Response:
        form = await _form(request)
        fired = state.faults.take("POST", request.url.path, None)
        kinds = {fault.kind for fault in fired}
        delay = sum(fault.latency_ms for fault in fired if fault.kind == "latency")
        if delay:  # a slow token endpoint
            await asyncio.sleep(delay / 1000)
        if "drop" in kinds:  # the connection breaks before the request is handled
            return LostAnswer(JSONResponse({"error": "temporarily_unavailable"}, 503))
        try:
            client_id, secret = _basic_client(request)
            state.tokens.check_client(client_id, secret)
            grant_type = form.get("grant_type", "")
            if grant_type == "authorization_code":
                body = state.tokens.exchange_code(client_id, form.get("code", ""),
                                                  form.get("redirect_uri", ""))
            elif grant_type == "refresh_token":
                body = state.tokens.refresh(client_id, form.get("refresh_token", ""))
            elif grant_type == "client_credentials":
                body = state.tokens.client_credentials(
                    client_id, _tenant_of(state, request.headers.get("tenantid")))
            else:
                raise GrantError("unsupported_grant_type", f"Unknown grant_type {grant_type!r}.")
        except GrantError as exc:
            return _oauth_error(exc)
        answer = JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
        if "commit_drop" in kinds:  # the grant is issued (a refresh token spent), answer lost
            return LostAnswer(answer)
        return answer

    async def revoke(request: Request) -> Response:
        form = await _form(request)
        try:
            client_id, secret = _basic_client(request)
            state.tokens.check_client(client_id, secret)
        except GrantError as exc:
            return _oauth_error(exc)
        return JSONResponse({"revoked": state.tokens.revoke(client_id, form.get("token", ""))})

    return [
        Route("/oauth-v1/auth", authorize, methods=["GET"]),
        Route("/oauth-v1/token", token, methods=["POST"]),
        Route("/oauth-v1/revoke", revoke, methods=["POST"]),
    ]
