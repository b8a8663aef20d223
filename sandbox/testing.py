"""Run a sandbox inside a test process: ``with running_sandbox() as sb: ...``.

The server runs on ``127.0.0.1:<free port>`` in a background thread with its own event loop,
so both sync and async tests can talk to it over real HTTP. The handle's helpers call the
``/_sandbox/`` control endpoints. Stable API for other engineers' tests::

    with running_sandbox(rate_limit=1000, rate_window_seconds=1) as sb:
        sb.api_url, sb.auth_url, sb.client_id, sb.client_secret, sb.redirect_uri
        sb.tenants                                   # [SandboxTenant(id, name, ...)]
        code = sb.consent_code(sb.tenants[0].id, sb.redirect_uri, ["bookkeeping"], "st")
        sb.add_fault("error", status=503, count=2)   # the next 2 API requests fail
        sb.clear_faults(); sb.advance_clock(3600); sb.invalidate_refresh_tokens(tid)
        sb.consent_code(tid, service=True, user=sb.tenants[0].administrator)
        sb.revoke_service_consent(tid)
        sb.created_vouchers(tid); sb.amend_voucher(tid, 2, "A", 5, description="...")
        sb.topics_url                                # ws://127.0.0.1:<port>/topics-v1
        sb.book_voucher(tid, {"Voucher": {...}}); sb.delete_voucher(tid, 3, "A", 5)
        sb.feed_events(topic="vouchers"); sb.feed_burst(1000, [tid, ...]); sb.drop_feed()
        sb.add_companies(20)                         # 20 more (plain) companies to watch
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from sandbox.options import SandboxOptions
from sandbox.server import bind, make_server
from sandbox.state import SandboxState

ALL_SCOPES = (
    "companyinformation", "bookkeeping", "invoice", "customer", "supplier", "supplierinvoice",
    "payment", "archive", "inbox", "connectfile", "settings", "costcenter", "project",
)


@dataclass(frozen=True)
class SandboxTenant:
    """A seeded Fortnox company; ``id`` is its ``TenantId`` (not a Skatt & Bokslut tenant)."""

    id: int
    name: str
    organisation_number: str
    financial_years: list[dict[str, Any]]
    planted_difference: str
    users: list[dict[str, Any]]

    @property
    def administrator(self) -> str:
        """The login of the company's system administrator."""
        return next(str(u["login"]) for u in self.users if u["administrator"])

    @property
    def ordinary_user(self) -> str:
        """The login of the company's user who is not an administrator."""
        return next(str(u["login"]) for u in self.users if not u["administrator"])


class SandboxHandle:
    """Addresses, demo client and control helpers of a running sandbox."""

    def __init__(self, base_url: str, options: SandboxOptions, state: SandboxState) -> None:
        self.base_url = base_url
        self.api_url = f"{base_url}/3"
        self.topics_url = base_url.replace("http://", "ws://", 1) + "/topics-v1"
        self.auth_url = f"{base_url}/oauth-v1"
        self.client_id = options.client_id
        self.client_secret = options.client_secret
        self.redirect_uris = options.redirect_uris
        self.redirect_uri = options.redirect_uris[0]
        self.options = options
        self.state = state
        self._http = httpx.Client(base_url=f"{base_url}/_sandbox", timeout=30)

    @property
    def tenants(self) -> list[SandboxTenant]:
        """The seeded Fortnox companies, in seed order (the first one consents by default)."""
        return [SandboxTenant(**t) for t in self._control("GET", "/tenants")["tenants"]]

    def _control(self, method: str, path: str, body: Any = None,
                 params: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body, params=params)
        response.raise_for_status()
        return response.json() if response.content else None

    # -- OAuth -------------------------------------------------------------------------
    def consent_code(self, tenant_id: int | None = None, redirect_uri: str | None = None,
                     scopes: Sequence[str] = ALL_SCOPES, state: str = "state", *,
                     service: bool = False, user: str | None = None) -> str:
        """An authorization code as if a user consented in the browser (no browser);
        ``service`` asks for a service-account consent, ``user`` logs in as that user."""
        params: dict[str, Any] = {
            "client_id": self.client_id, "redirect_uri": redirect_uri or self.redirect_uri,
            "scope": " ".join(scopes), "state": state, "access_type": "offline",
            "response_type": "code",
        }
        if tenant_id is not None:
            params["tenant"] = tenant_id
        if service:
            params["account_type"] = "service"
        if user is not None:
            params["user"] = user
        response = httpx.get(f"{self.auth_url}/auth", params=params, follow_redirects=False)
        if response.status_code != 302:
            raise RuntimeError(f"consent failed: {response.status_code} {response.text}")
        query = parse_qs(urlsplit(response.headers["location"]).query)
        if "code" not in query:
            raise RuntimeError(f"consent refused: {query}")
        return query["code"][0]

    def tokens(self, tenant_id: int | None = None,
               scopes: Sequence[str] = ALL_SCOPES) -> dict[str, Any]:
        """A fresh token pair for a tenant (consent + code exchange), for tests that only
        need to call the API."""
        code = self.consent_code(tenant_id, scopes=scopes)
        response = httpx.post(f"{self.auth_url}/token",
                              auth=(self.client_id, self.client_secret),
                              data={"grant_type": "authorization_code", "code": code,
                                    "redirect_uri": self.redirect_uri})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def set_consent_tenant(self, tenant_id: int | None) -> None:
        """Which tenant consents when ``/oauth-v1/auth`` names none (None = the first)."""
        self._control("POST", "/consent-tenant", {"tenant": tenant_id})

    def revoke_service_consent(self, tenant_id: int) -> int:
        """The customer withdraws the company's service-account consent."""
        return int(self._control(
            "POST", f"/tenants/{tenant_id}/revoke-service-consent")["revoked"])

    def invalidate_refresh_tokens(self, tenant_id: int) -> int:
        """Make every live refresh token of a tenant fail with ``invalid_grant``."""
        return int(self._control(
            "POST", f"/tenants/{tenant_id}/invalidate-refresh-tokens")["invalidated"])

    # -- clock, limits, faults ---------------------------------------------------------
    def advance_clock(self, seconds: float) -> str:
        """Move the sandbox clock forward (token and code expiry); returns the new time."""
        return str(self._control("POST", "/clock", {"seconds": seconds})["now"])

    def set_rate_limit(self, limit: int, window_seconds: float) -> None:
        """Change the sliding window at run time."""
        self._control("POST", "/rate-limit", {"limit": limit, "window_seconds": window_seconds})

    def add_fault(self, kind: str, **spec: Any) -> int:
        """Add a fault rule (see :mod:`sandbox.faults`); returns its id."""
        return int(self._control("POST", "/faults", {"kind": kind, **spec})["added"][0])

    def faults(self) -> list[dict[str, Any]]:
        """The active fault rules."""
        return list(self._control("GET", "/faults")["faults"])

    def remove_fault(self, fault_id: int) -> None:
        """Remove one fault rule."""
        self._control("DELETE", f"/faults/{fault_id}")

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._control("DELETE", "/faults")

    # -- data --------------------------------------------------------------------------
    def created_vouchers(self, tenant_id: int, financial_year: int | None = None
                         ) -> list[dict[str, Any]]:
        """Vouchers booked through ``POST /3/vouchers`` (Fortnox JSON shape, with rows)."""
        params = {"financialyear": financial_year} if financial_year else None
        return list(self._control("GET", f"/tenants/{tenant_id}/vouchers", params=params)
                    ["Vouchers"])

    def all_vouchers(self, tenant_id: int, financial_year: int | None = None
                     ) -> list[dict[str, Any]]:
        """Every voucher the sandbox holds for a tenant."""
        params: dict[str, Any] = {"created": "false"}
        if financial_year:
            params["financialyear"] = financial_year
        return list(self._control("GET", f"/tenants/{tenant_id}/vouchers", params=params)
                    ["Vouchers"])

    def amend_voucher(self, tenant_id: int, year_id: int, series: str, number: int,
                      description: str | None = None,
                      rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Change a voucher as a user would (new text and/or new rows; old rows become
        removed history), so a re-import sees a change."""
        body: dict[str, Any] = {}
        if description is not None:
            body["Description"] = description
        if rows is not None:
            body["VoucherRows"] = rows
        return dict(self._control(
            "POST", f"/tenants/{tenant_id}/vouchers/{year_id}/{series}/{number}", body)["Voucher"])

    def attach_file(self, tenant_id: int, year_id: int, series: str, number: int, *,
                    content_type: str = "application/pdf", size: int = 0,
                    name: str = "") -> str:
        """Connects a new archive file of about ``size`` bytes to a voucher; its ``FileId``."""
        body = {"content_type": content_type, "size": size, "name": name}
        return str(self._control(
            "POST", f"/tenants/{tenant_id}/vouchers/{year_id}/{series}/{number}/files",
            body)["FileId"])

    def file_bytes(self, tenant_id: int, file_id: str) -> bytes:
        """An archived file's bytes, straight from the sandbox (no token, no rate limit)."""
        response = self._http.get(f"/tenants/{tenant_id}/files/{file_id}")
        response.raise_for_status()
        return response.content

    # -- the change feed (/topics-v1) -----------------------------------------------------
    def add_companies(self, count: int, vouchers_per_year: int = 0,
                      first_id: int | None = None) -> list[SandboxTenant]:
        """``count`` more plain companies (calendar years, no invoices; ids from ``first_id``
        on, else after the highest), until the reset."""
        body: dict[str, int] = {"count": count, "vouchers_per_year": vouchers_per_year}
        if first_id is not None:
            body["first_id"] = first_id
        made = self._control("POST", "/tenants", body)
        return [SandboxTenant(**t) for t in made["tenants"]]

    def book_voucher(self, tenant_id: int, body: dict[str, Any],
                     financial_year: int | None = None) -> dict[str, Any]:
        """Book a voucher as the customer would in Fortnox (not through our API): same body
        and rules as ``POST /3/vouchers``; emits ``voucher-created-v1``."""
        params = {"financialyear": financial_year} if financial_year else None
        return dict(self._control("POST", f"/tenants/{tenant_id}/vouchers", body,
                                  params=params)["Voucher"])

    def delete_voucher(self, tenant_id: int, year_id: int, series: str, number: int) -> None:
        """Delete a voucher as the customer would; emits ``voucher-deleted-v1``."""
        self._control("DELETE", f"/tenants/{tenant_id}/vouchers/{year_id}/{series}/{number}")

    def emit_event(self, tenant_id: int, topic: str, type_: str, entity_id: str,
                   **extra: Any) -> dict[str, Any]:
        """Put any event on the feed (invoice bookings, payments, ...); the event as sent."""
        body = {"tenant": tenant_id, "topic": topic, "type": type_, "entityId": entity_id,
                **extra}
        return dict(self._control("POST", "/topics/events", body)["events"][0])

    def feed_events(self, topic: str | None = None, tenant_id: int | None = None,
                    after: str | None = None) -> list[dict[str, Any]]:
        """The feed's own log: kept events as the feed sends them, topic by topic, oldest
        first."""
        params: dict[str, Any] = {}
        if topic is not None:
            params["topic"] = topic
        if tenant_id is not None:
            params["tenant"] = tenant_id
        if after is not None:
            params["after"] = after
        return list(self._control("GET", "/topics/events", params=params)["events"])

    def feed_burst(self, count: int, tenant_ids: Sequence[int] | None = None
                   ) -> dict[str, Any]:
        """Book ``count`` small vouchers round-robin over the tenants (one event each)."""
        body: dict[str, Any] = {"count": count}
        if tenant_ids:
            body["tenants"] = list(tenant_ids)
        return dict(self._control("POST", "/topics/burst", body))

    def feed_connections(self) -> list[dict[str, Any]]:
        """The feed's connections: tenants, stopped tenants, topics (gap?), events sent."""
        return list(self._control("GET", "/topics/connections")["connections"])

    def drop_feed(self, connection_id: int | None = None) -> int:
        """Drop the feed's connections (or one) now, without a close frame."""
        body = {"connection": connection_id} if connection_id is not None else {}
        return int(self._control("POST", "/topics/drop", body)["dropped"])

    def reconciliation(self, tenant_id: int, day: str) -> dict[str, Any]:
        """Ledger accounts 1510/2440 versus open invoices (SEK) at a date."""
        return dict(self._control("GET", f"/tenants/{tenant_id}/reconciliation",
                                  params={"date": day}))

    def stats(self) -> dict[str, Any]:
        """Token events (codes, refreshes, rejections) and API answers per tenant/status."""
        return dict(self._control("GET", "/stats"))

    def reset(self) -> None:
        """Fresh seed data, no tokens, no faults, clock and rate limit as started."""
        self._control("POST", "/reset")

    def close(self) -> None:
        """Release the control client."""
        self._http.close()


@contextmanager
def running_sandbox(**options: Any) -> Iterator[SandboxHandle]:
    """Start a sandbox (``SandboxOptions`` fields as keyword arguments) for a ``with`` block."""
    chosen = replace(SandboxOptions(), **options)
    state = SandboxState(chosen)
    server = make_server(state)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              name="fortnox-sandbox", daemon=True)
    thread.start()
    handle = SandboxHandle(f"http://127.0.0.1:{port}", chosen, state)
    try:
        yield handle
    finally:
        handle.close()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
