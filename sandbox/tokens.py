"""OAuth grants: authorization codes, JWT access tokens, rotating single-use refresh tokens,
and service-account consents answered by the ``client_credentials`` grant.

Pure logic over the sandbox clock; :mod:`sandbox.oauth_routes` puts HTTP around it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections import Counter
from dataclasses import dataclass

from sandbox.clock import SandboxClock
from sandbox.options import SandboxOptions

KNOWN_SCOPES = frozenset({
    "companyinformation", "bookkeeping", "invoice", "customer", "supplier", "supplierinvoice",
    "payment", "archive", "inbox", "connectfile", "settings", "costcenter", "project",
})


class GrantError(Exception):
    """An OAuth error answer: ``error`` code (``invalid_grant``, ...) and description."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a valid access token says."""

    tenant_id: int
    client_id: str
    scopes: frozenset[str]
    grant_id: str
    expires_at: int = 0  # the ``exp`` claim (sandbox clock, epoch seconds)


@dataclass(slots=True)
class _Code:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    tenant_id: int
    expires_at: int
    service_by: str = ""  # the administrator who gave a service-account consent
    used: bool = False


@dataclass(slots=True)
class ServiceConsent:
    """A system administrator's consent that lets a client act for a company on its own."""

    client_id: str
    tenant_id: int
    scopes: tuple[str, ...]
    grant_id: str
    given_by: str
    revoked: bool = False


@dataclass(slots=True)
class _Refresh:
    client_id: str
    scopes: tuple[str, ...]
    tenant_id: int
    grant_id: str
    expires_at: int
    used: bool = False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenAuthority:
    """Issues and checks the sandbox's codes and tokens (thread-safe)."""

    def __init__(self, options: SandboxOptions, clock: SandboxClock, issuer: str) -> None:
        self.options, self.clock, self.issuer = options, clock, issuer
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._revoked_grants: set[str] = set()
        self._service: dict[tuple[str, int], ServiceConsent] = {}
        self.stats: Counter[tuple[int, str]] = Counter()

    def reset(self) -> None:
        """Forget every code and token."""
        with self._lock:
            self._codes.clear()
            self._refresh.clear()
            self._revoked_grants.clear()
            self._service.clear()
            self.stats.clear()

    # -- client and consent ------------------------------------------------------------
    def check_client(self, client_id: str, client_secret: str | None = None) -> None:
        """Raise ``invalid_client`` unless these are the demo client's credentials."""
        if not hmac.compare_digest(client_id, self.options.client_id) or (
            client_secret is not None
            and not hmac.compare_digest(client_secret, self.options.client_secret)
        ):
            raise GrantError("invalid_client", "Client authentication failed.", 401)

    def parse_scopes(self, scope: str) -> tuple[str, ...]:
        """Split a space-separated scope list; unknown or no scopes are ``invalid_scope``."""
        scopes = tuple(dict.fromkeys(scope.split()))
        unknown = [s for s in scopes if s not in KNOWN_SCOPES]
        if not scopes or unknown:
            raise GrantError("invalid_scope", f"Unknown or missing scope: {' '.join(unknown)}")
        return scopes

    def issue_code(self, client_id: str, redirect_uri: str, scopes: tuple[str, ...],
                   tenant_id: int, *, service_by: str = "") -> str:
        """A fresh single-use authorization code, valid ``code_seconds``; a code with
        ``service_by`` (the consenting administrator) becomes a service-account consent when
        it is exchanged."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(client_id, redirect_uri, scopes, tenant_id,
                                      self.clock.timestamp() + self.options.code_seconds,
                                      service_by)
            self.stats[(tenant_id, "codes_issued")] += 1
        return code

    # -- token endpoint ----------------------------------------------------------------
    def exchange_code(self, client_id: str, code: str, redirect_uri: str) -> dict[str, object]:
        """``grant_type=authorization_code``: the first token pair of a new grant."""
        with self._lock:
            record = self._codes.get(code)
            if record is None or record.client_id != client_id:
                raise GrantError("invalid_grant", "The authorization code is invalid.")
            if record.used:
                raise GrantError("invalid_grant", "The authorization code has already been used.")
            if record.expires_at <= self.clock.timestamp():
                raise GrantError("invalid_grant", "The authorization code has expired.")
            if record.redirect_uri != redirect_uri:
                raise GrantError("invalid_grant", "The redirect_uri does not match.")
            record.used = True
            self.stats[(record.tenant_id, "codes_exchanged")] += 1
            if record.service_by:
                consent = ServiceConsent(client_id, record.tenant_id, record.scopes,
                                         secrets.token_hex(8), record.service_by)
                self._service[(client_id, record.tenant_id)] = consent
                # As Fortnox documents: the consent's code gives an access token and a
                # refresh token, like any other code (client credentials never do).
                return self._token_pair(client_id, record.scopes, record.tenant_id,
                                        consent.grant_id)
            return self._token_pair(client_id, record.scopes, record.tenant_id,
                                    secrets.token_hex(8))

    def client_credentials(self, client_id: str, tenant_id: int) -> dict[str, object]:
        """``grant_type=client_credentials`` for the company a ``TenantId`` header named: a
        one-hour access token of its service-account consent, never a refresh token."""
        with self._lock:
            consent = self._service.get((client_id, tenant_id))
            if consent is None:
                raise GrantError("invalid_grant",
                                 "There is no service account consent for this TenantId.")
            if consent.revoked:
                self.stats[(consent.tenant_id, "client_credentials_rejected")] += 1
                raise GrantError("invalid_grant", "The service account consent is revoked.")
            self.stats[(consent.tenant_id, "client_credentials")] += 1
            return self._access_only(consent)

    def revoke_service_consent(self, tenant_id: int) -> int:
        """The customer withdraws every service-account consent of a company; their access
        tokens stop working at once. Returns how many consents were live."""
        with self._lock:
            live = [c for c in self._service.values() if c.tenant_id == tenant_id and not c.revoked]
            for consent in live:
                consent.revoked = True
                self._revoked_grants.add(consent.grant_id)
            return len(live)

    def service_consents(self) -> list[ServiceConsent]:
        """Every service-account consent given (revoked ones included)."""
        with self._lock:
            return list(self._service.values())

    def refresh(self, client_id: str, refresh_token: str) -> dict[str, object]:
        """``grant_type=refresh_token``: rotate; the presented token never works again."""
        with self._lock:
            record = self._refresh.get(refresh_token)
            if record is None or record.client_id != client_id:
                raise GrantError("invalid_grant", "The refresh token is invalid.")
            if record.used or record.grant_id in self._revoked_grants:
                self.stats[(record.tenant_id, "refresh_rejected")] += 1
                raise GrantError("invalid_grant", "The refresh token has already been used.")
            if record.expires_at <= self.clock.timestamp():
                raise GrantError("invalid_grant", "The refresh token has expired.")
            record.used = True
            self.stats[(record.tenant_id, "refreshes")] += 1
            return self._token_pair(client_id, record.scopes, record.tenant_id, record.grant_id)

    def revoke(self, client_id: str, token: str) -> bool:
        """Revoke the grant a refresh token belongs to (its access tokens die too); whether
        the token named a grant of this client."""
        with self._lock:
            record = self._refresh.get(token)
            if record is None or record.client_id != client_id:
                return False
            self._revoked_grants.add(record.grant_id)
            self.stats[(record.tenant_id, "revocations")] += 1
            return True

    def invalidate_refresh_tokens(self, tenant_id: int) -> int:
        """Make every live refresh token of a tenant fail (access tokens keep working)."""
        with self._lock:
            live = [r for r in self._refresh.values() if r.tenant_id == tenant_id and not r.used]
            for record in live:
                record.used = True
            return len(live)

    def _token_pair(self, client_id: str, scopes: tuple[str, ...], tenant_id: int,
                    grant_id: str) -> dict[str, object]:
        refresh_token = secrets.token_urlsafe(32)
        self._refresh[refresh_token] = _Refresh(
            client_id, scopes, tenant_id, grant_id,
            self.clock.timestamp() + self.options.refresh_token_days * 86_400)
        return {**self._access(client_id, scopes, tenant_id, grant_id),
                "refresh_token": refresh_token}

    def _access_only(self, consent: ServiceConsent) -> dict[str, object]:
        return self._access(consent.client_id, consent.scopes, consent.tenant_id,
                            consent.grant_id)

    def _access(self, client_id: str, scopes: tuple[str, ...], tenant_id: int,
                grant_id: str) -> dict[str, object]:
        """An access-token answer in Fortnox's key order (a refresh token may follow)."""
        now = self.clock.timestamp()
        claims = {
            "iss": self.issuer, "sub": f"{tenant_id}:{client_id}", "aud": "api.fortnox.se",
            "tenantId": tenant_id, "clientId": client_id, "scope": " ".join(scopes),
            "iat": now, "exp": now + self.options.access_token_seconds,
            "jti": secrets.token_hex(8), "gid": grant_id,
        }
        return {
            "access_token": self._sign(claims), "expires_in": self.options.access_token_seconds,
            "token_type": "bearer", "scope": " ".join(scopes),
        }

    # -- access tokens -----------------------------------------------------------------
    def _sign(self, claims: dict[str, object]) -> str:
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        mac = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(mac)}"

    def verify_access(self, token: str) -> AccessClaims:
        """The claims of a valid access token; ``GrantError('expired' | 'invalid')`` else."""
        parts = token.split(".")
        if len(parts) != 3:
            raise GrantError("invalid", "malformed token", 401)
        mac = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_b64(mac), parts[2]):
            raise GrantError("invalid", "bad signature", 401)
        claims = json.loads(_unb64(parts[1]))
        if claims["gid"] in self._revoked_grants:
            raise GrantError("invalid", "revoked", 401)
        if int(claims["exp"]) <= self.clock.timestamp():
            raise GrantError("expired", "expired", 401)
        return AccessClaims(int(claims["tenantId"]), str(claims["clientId"]),
                            frozenset(str(claims["scope"]).split()), str(claims["gid"]),
                            int(claims["exp"]))
