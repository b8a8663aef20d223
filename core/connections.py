"""The Fortnox connection of a tenant, and the port that connects, reads and disconnects it.

A tenant is the caller's company id (an opaque string). Its connection holds the OAuth tokens
(only ever inside the adapter) and what the use cases may show: state, reason, scopes, expiries
and the Fortnox company it is linked to.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.errors import ConnectionRevoked, FieldViolation, InvalidRequest, ReconnectRequired
from core.imports import ImportKind
from sie.values import org_number_digits


class ConnectionState(enum.Enum):
    """Whether Fortnox calls can be made for the tenant."""

    CONNECTED = "CONNECTED"
    RECONNECT_REQUIRED = "RECONNECT_REQUIRED"
    REVOKED = "REVOKED"


class AccountType(enum.Enum):
    """How a connection gets access tokens: a user's rotating refresh tokens, or a service
    account's client-credentials grant (no refresh token; lasts until the consent is revoked)."""

    USER = "user"
    SERVICE = "service"


@dataclass(frozen=True)
class Connection:
    """A tenant's link to one Fortnox company; no token ever appears here.

    ``reason`` says why the state is not ``CONNECTED`` (e.g. Fortnox's ``invalid_grant``
    description turned into a stable phrase). Times are timezone-aware UTC.
    """

    tenant: str
    state: ConnectionState
    reason: str
    scopes: tuple[str, ...]
    fortnox_tenant_id: str
    company_name: str
    organisation_number: str
    connected_at: datetime | None
    access_token_expires_at: datetime | None
    refresh_token_expires_at: datetime | None
    last_refreshed_at: datetime | None
    last_sie_import_at: datetime | None
    last_ledger_import_at: datetime | None
    account_type: AccountType = AccountType.USER
    state_changed_at: datetime | None = None
    last_export_at: datetime | None = None


@dataclass(frozen=True)
class ConnectionFilter:
    """Which connections ``list_connections`` returns (``None``: any)."""

    state: ConnectionState | None = None
    account_type: AccountType | None = None


@dataclass(frozen=True)
class ConnectionPage:
    """One page of connections ordered by tenant; ``next_after`` is the last tenant when more
    may follow, else ``None``."""

    connections: tuple[Connection, ...]
    next_after: str | None


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the customer's browser, and the single-use ``state`` bound to the tenant."""

    url: str
    state: str
    expires_at: datetime


class FortnoxConnections(Protocol):
    """Connect, inspect and disconnect tenants (the OAuth side of the Fortnox adapter).

    ``deadline`` is a ``time.monotonic()`` instant (the RPC's deadline): no retry starts after
    it. Errors are the domain errors of ``core.errors``.
    """

    async def begin_connect(
        self,
        tenant: str,
        redirect_uri: str,
        scopes: Sequence[str] = (),
        expected_organisation_number: str = "",
        account_type: AccountType = AccountType.USER,
    ) -> AuthorizationRequest:
        """Creates a 10-minute single-use state and the authorization URL.

        Empty ``scopes`` means the configured default scopes. A redirect URI outside the
        configured list raises ``InvalidRequest``. A tenant already connected stays connected
        as it is until the new login completes.
        """
        ...

    async def complete_connect(
        self, state: str, code: str, *, error: str = "", error_description: str = "",
        deadline: float | None = None,
    ) -> Connection:
        """Consumes ``state``, exchanges ``code``, stores the tokens, reads the company, and
        only then replaces the tenant's earlier connection (its history stays).

        Raises ``OAuthStateInvalid`` (unknown, expired, used, or used by a completion that
        made no connection), ``ConsentRefused`` when Fortnox sent ``error`` instead of a code,
        ``CodeExchangeRefused``, or ``WrongFortnoxCompany`` when an expected organisation
        number was given and differs (the fresh tokens are then revoked and nothing changes).
        """
        ...

    async def list_connections(
        self, which: ConnectionFilter, page_size: int, after: str | None
    ) -> ConnectionPage:
        """The connections matching ``which`` with tenants after ``after``, in tenant order."""
        ...

    async def get_connection(self, tenant: str) -> Connection:
        """The tenant's connection; ``ConnectionNotFound`` if it never connected."""
        ...

    async def disconnect(self, tenant: str, *, deadline: float | None = None) -> Connection:
        """Revokes the tokens at Fortnox (best effort), deletes them, marks ``REVOKED``."""
        ...

    async def record_import(self, tenant: str, kind: ImportKind, at: datetime) -> None:
        """Remembers the time of the tenant's last successful import of ``kind``."""
        ...


def require_company_guard(expected_organisation_number: str, allow_any_company: bool) -> None:
    """A Connect must name the company it expects unless the caller opts out explicitly:
    Fortnox does not bind a code to the login that was started, so the organisation number
    is what stops a login into another company from connecting this tenant; one that is no
    organisation number would stop nothing, so it is refused too."""
    if not expected_organisation_number.strip() and not allow_any_company:
        raise InvalidRequest(
            "Name the Fortnox company to connect (expected_organisation_number), or set"
            " allow_any_company when the customer starts the login from your own session.",
            violations=(FieldViolation("expected_organisation_number",
                                       "required unless allow_any_company is set"),),
        )
    if expected_organisation_number.strip() and org_number_digits(
            expected_organisation_number) is None:
        raise InvalidRequest(
            "expected_organisation_number is not an organisation number.",
            violations=(FieldViolation(
                "expected_organisation_number",
                "must be an organisation number: nnnnnn-nnnn, 10 or 12 digits"),),
        )


def same_organisation(expected: str, actual: str) -> bool:
    """Whether two organisation numbers name one company: equal in their 10 digits however
    each is written (``556677-8899``, ``5566778899``, ``16556677-8899``, ``165566778899``);
    a number that is none of these matches nothing."""
    digits = org_number_digits(expected)
    return digits is not None and digits == org_number_digits(actual)


def require_connected(connection: Connection) -> Connection:
    """Returns a connected connection; else raises the error that tells the caller what to do."""
    if connection.state is ConnectionState.REVOKED:
        raise ConnectionRevoked(
            "The tenant was disconnected from Fortnox; connect it again.",
            metadata={"tenant": connection.tenant},
        )
    if connection.state is ConnectionState.RECONNECT_REQUIRED:
        raise ReconnectRequired(
            "Fortnox no longer accepts this connection; the customer must log in again.",
            metadata={"tenant": connection.tenant, "state_reason": connection.reason},
        )
    return connection
