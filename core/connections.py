"""The Fortnox connection of a tenant, the port the use cases read it through, and the rules
every use case applies to one (which company a login must reach, whether calls may be made).

A tenant is the caller's company id (an opaque string). Its connection holds the OAuth tokens
(only ever inside the token store and the Fortnox adapter) and what the use cases may show:
state, reason, scopes, expiries and the Fortnox company it is linked to. Connecting and
disconnecting are ``core.connecting``'s.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.errors import (
    ConnectionNotFound,
    ConnectionRevoked,
    FieldViolation,
    InvalidRequest,
    ReconnectRequired,
)
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


class ConnectionRecords(Protocol):
    """Where the use cases read a tenant's connection and note its imports: the token store,
    read straight (``core.token_store.TokenStore`` has both methods; tokens stay in it)."""

    async def connection(self, tenant: str) -> Connection | None:
        """The tenant's connection, or ``None`` if it never connected."""
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


def require_found(connection: Connection | None) -> Connection:
    """The connection a tenant has; ``ConnectionNotFound`` if it never connected."""
    if connection is None:
        raise ConnectionNotFound("The tenant is not connected to Fortnox.")
    return connection


def require_connected(connection: Connection | None) -> Connection:
    """Returns a connected connection; else raises the error that tells the caller what to do
    (``ConnectionNotFound`` when there is none)."""
    connection = require_found(connection)
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
