"""Connections, their encrypted tokens and the OAuth states, in PostgreSQL.

Implements ``core.token_store.TokenStore``. Every change to a tenant's tokens first locks the
tenant's ``connections`` row (``SELECT ... FOR UPDATE``), so a refresh claim is single-flight
across every replica: whoever finds the generation already claimed waits for the next one.
Tokens are AES-GCM encrypted at rest exactly as in SQLite (``adapters.store.crypto``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, LiteralString

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from adapters.postgres.database import PostgresDatabase
from adapters.store.crypto import TokenCipher
from core.connections import (
    AccountType,
    Connection,
    ConnectionFilter,
    ConnectionPage,
    ConnectionState,
)
from core.errors import (
    ConnectionNotFound,
    OAuthStateInvalid,
)
from core.imports import ImportKind
from core.token_store import (
    STATE_CONNECTED,
    ClaimOutcome,
    CompanyLink,
    CurrentTokens,
    OAuthStateRecord,
    RefreshClaim,
    TokenGrant,
    require_unused_state,
    require_usable,
)

Conn = AsyncConnection[DictRow]

_CONNECTED = ConnectionState.CONNECTED.value

#: A connection with the time of the tenant's last voucher sent to Fortnox.
_SELECT: LiteralString = (
    "SELECT c.*, (SELECT MAX(v.exported_at) FROM voucher_exports v WHERE v.tenant = c.tenant)"
    " AS last_export_at FROM connections c"
)


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _row(conn: Conn, tenant: str, *, lock: bool = False) -> DictRow | None:
    sql: LiteralString = (
        "SELECT * FROM connections c WHERE tenant = %s FOR UPDATE" if lock
        else _SELECT + " WHERE c.tenant = %s")
    cursor = await conn.execute(sql, (tenant,))
    return await cursor.fetchone()


class PostgresTokenStore:
    """``core.token_store.TokenStore`` in PostgreSQL: tokens AES-GCM encrypted at rest."""

    def __init__(self, db: PostgresDatabase, token_key: bytes) -> None:
        self._db = db
        self._cipher = TokenCipher(token_key)

    # -- OAuth states ------------------------------------------------------------------
    async def create_state(self, record: OAuthStateRecord) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "INSERT INTO oauth_states (state, tenant, redirect_uri, scopes,"
                " expected_organisation_number, created_at, expires_at, account_type)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (record.state, record.tenant, record.redirect_uri, " ".join(record.scopes),
                 record.expected_organisation_number, record.created_at, record.expires_at,
                 record.account_type.value),
            )

    async def consume_state(self, state: str, now: datetime) -> OAuthStateRecord:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "SELECT * FROM oauth_states WHERE state = %s FOR UPDATE", (state,))
            row = await cursor.fetchone()
            if row is None:
                raise OAuthStateInvalid("The OAuth state is unknown.", reason="OAUTH_STATE_UNKNOWN")
            require_unused_state(row["used_at"] is not None, row["outcome"])
            if row["expires_at"] <= now:
                raise OAuthStateInvalid("The OAuth state has expired.",
                                        reason="OAUTH_STATE_EXPIRED")
            await conn.execute("UPDATE oauth_states SET used_at = %s WHERE state = %s",
                               (now, state))
        return OAuthStateRecord(
            state=row["state"], tenant=row["tenant"], redirect_uri=row["redirect_uri"],
            scopes=tuple(row["scopes"].split()),
            expected_organisation_number=row["expected_organisation_number"],
            created_at=row["created_at"], expires_at=row["expires_at"],
            account_type=AccountType(row["account_type"]),
        )

    async def fail_state(self, state: str, outcome: str) -> None:
        async with self._db.connection() as conn:
            await conn.execute("UPDATE oauth_states SET outcome = %s WHERE state = %s",
                               (outcome, state))

    async def purge_expired_states(self, now: datetime) -> int:
        async with self._db.connection() as conn:
            cursor = await conn.execute("DELETE FROM oauth_states WHERE expires_at < %s", (now,))
            return cursor.rowcount

    # -- connections -------------------------------------------------------------------
    async def save_connection(
        self, tenant: str, grant: TokenGrant, link: CompanyLink, account_type: AccountType,
        state: str, now: datetime,
    ) -> Connection:
        async with self._db.transaction() as conn:
            # Two replicas completing a connect at once: the second waits and replaces.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (tenant,))
            old = await _row(conn, tenant, lock=True)
            generation = 1 if old is None else int(old["token_generation"]) + 1
            await conn.execute(
                "UPDATE refresh_tokens SET used_at = %s WHERE tenant = %s AND used_at IS NULL",
                (now, tenant),
            )
            await conn.execute(
                "INSERT INTO connections (tenant, state, state_reason, fortnox_tenant_id,"
                " company_name, organisation_number, scopes, access_token, refresh_token,"
                " token_generation, access_token_expires_at, refresh_token_expires_at,"
                " last_refreshed_at, connected_at, updated_at, account_type, state_changed_at)"
                " VALUES (%s, %s, '', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (tenant) DO UPDATE SET state = excluded.state, state_reason = '',"
                " fortnox_tenant_id = excluded.fortnox_tenant_id,"
                " company_name = excluded.company_name,"
                " organisation_number = excluded.organisation_number,"
                " scopes = excluded.scopes, access_token = excluded.access_token,"
                " refresh_token = excluded.refresh_token,"
                " token_generation = excluded.token_generation,"
                " access_token_expires_at = excluded.access_token_expires_at,"
                " refresh_token_expires_at = excluded.refresh_token_expires_at,"
                " last_refreshed_at = excluded.last_refreshed_at,"
                " connected_at = excluded.connected_at, updated_at = excluded.updated_at,"
                " account_type = excluded.account_type,"
                " state_changed_at = excluded.state_changed_at",
                (
                    tenant, _CONNECTED, link.fortnox_tenant_id, link.company_name,
                    link.organisation_number, " ".join(grant.scopes),
                    self._cipher.encrypt(grant.access_token, tenant, "access_token"),
                    self._encrypt_refresh(grant, tenant),
                    generation, grant.access_expires_at, grant.refresh_expires_at,
                    now, now, now, account_type.value, now,
                ),
            )
            await self._log_refresh_token(conn, tenant, generation, grant.refresh_token, now)
            await conn.execute("UPDATE oauth_states SET outcome = %s WHERE state = %s",
                               (STATE_CONNECTED, state))
            row = await _row(conn, tenant)
        assert row is not None
        return _connection(row)

    async def connection(self, tenant: str) -> Connection | None:
        async with self._db.connection() as conn:
            row = await _row(conn, tenant)
        return None if row is None else _connection(row)

    async def list_connections(
        self, which: ConnectionFilter, limit: int, after: str | None
    ) -> ConnectionPage:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                _SELECT + " WHERE c.tenant > %s"
                " AND (%s::text IS NULL OR c.state = %s)"
                " AND (%s::text IS NULL OR c.account_type = %s)"
                " ORDER BY c.tenant LIMIT %s",
                (after or "", *(2 * [which.state and which.state.value]),
                 *(2 * [which.account_type and which.account_type.value]), limit + 1),
            )
            rows = await cursor.fetchall()
        page = tuple(_connection(row) for row in rows[:limit])
        return ConnectionPage(page, page[-1].tenant if len(rows) > limit else None)

    async def stale_refresh_tokens(self, issued_before: datetime, limit: int) -> list[str]:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "SELECT tenant FROM connections WHERE account_type = %s AND state = %s"
                " AND last_refreshed_at < %s ORDER BY last_refreshed_at LIMIT %s",
                (AccountType.USER.value, _CONNECTED, issued_before, limit),
            )
            return [str(row["tenant"]) for row in await cursor.fetchall()]

    async def current_tokens(self, tenant: str) -> CurrentTokens:
        async with self._db.connection() as conn:
            row = await _row(conn, tenant)
        return self._tokens(tenant, row)

    async def claim_refresh(
        self, tenant: str, stale_generation: int, now: datetime, lease: timedelta
    ) -> RefreshClaim:
        async with self._db.transaction() as conn:
            tokens = self._tokens(tenant, await _row(conn, tenant, lock=True))
            if tokens.generation != stale_generation:
                return RefreshClaim(ClaimOutcome.REFRESHED_ELSEWHERE, tokens)
            cursor = await conn.execute(
                "SELECT used_at FROM refresh_tokens WHERE tenant = %s AND generation = %s",
                (tenant, tokens.generation),
            )
            claimed = await cursor.fetchone()
            used_at = claimed["used_at"] if claimed is not None else None
            if used_at is not None and used_at > now - lease:
                return RefreshClaim(ClaimOutcome.BUSY, tokens)
            await conn.execute(
                "UPDATE refresh_tokens SET used_at = %s WHERE tenant = %s AND generation = %s",
                (now, tenant, tokens.generation),
            )
        return RefreshClaim(ClaimOutcome.CLAIMED, tokens)

    async def release_claim(self, tenant: str, generation: int) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE refresh_tokens SET used_at = NULL WHERE tenant = %s AND generation = %s"
                " AND generation = (SELECT token_generation FROM connections WHERE tenant = %s)",
                (tenant, generation, tenant),
            )

    async def complete_refresh(
        self, tenant: str, generation: int, grant: TokenGrant, now: datetime
    ) -> CurrentTokens:
        async with self._db.transaction() as conn:
            await _row(conn, tenant, lock=True)
            await conn.execute(
                "UPDATE refresh_tokens SET used_at = %s WHERE tenant = %s AND generation = %s",
                (now, tenant, generation),
            )
            cursor = await conn.execute(
                "UPDATE connections SET access_token = %s, refresh_token = %s,"
                " token_generation = %s, access_token_expires_at = %s,"
                " refresh_token_expires_at = %s, last_refreshed_at = %s, scopes = %s,"
                " updated_at = %s WHERE tenant = %s AND token_generation = %s AND state = %s",
                (
                    self._cipher.encrypt(grant.access_token, tenant, "access_token"),
                    self._encrypt_refresh(grant, tenant),
                    generation + 1, grant.access_expires_at, grant.refresh_expires_at, now,
                    " ".join(grant.scopes), now, tenant, generation, _CONNECTED,
                ),
            )
            if cursor.rowcount == 1:
                await self._log_refresh_token(
                    conn, tenant, generation + 1, grant.refresh_token, now)
            row = await _row(conn, tenant)
        return self._tokens(tenant, row)

    async def require_reconnect(
        self, tenant: str, generation: int, reason: str, now: datetime
    ) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE connections SET state = %s, state_reason = %s, updated_at = %s,"
                " state_changed_at = %s WHERE tenant = %s AND token_generation = %s"
                " AND state = %s",
                (ConnectionState.RECONNECT_REQUIRED.value, reason, now, now, tenant, generation,
                 _CONNECTED),
            )

    async def consent_revoked(
        self, tenant: str, generation: int, reason: str, now: datetime
    ) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE connections SET state = %s, state_reason = %s, access_token = NULL,"
                " access_token_expires_at = NULL, updated_at = %s, state_changed_at = %s"
                " WHERE tenant = %s AND token_generation = %s AND state = %s",
                (ConnectionState.REVOKED.value, reason, now, now, tenant, generation,
                 _CONNECTED),
            )

    async def refresh_token_for_revocation(self, tenant: str) -> str | None:
        async with self._db.connection() as conn:
            row = await _row(conn, tenant)
        if row is None or row["refresh_token"] is None:
            return None
        return self._cipher.decrypt(bytes(row["refresh_token"]), tenant, "refresh_token")

    async def revoke(self, tenant: str, reason: str, now: datetime) -> Connection:
        async with self._db.transaction() as conn:
            if await _row(conn, tenant, lock=True) is None:
                raise ConnectionNotFound("The tenant is not connected to Fortnox.")
            await conn.execute(
                "UPDATE connections SET state = %s, state_reason = %s, access_token = NULL,"
                " refresh_token = NULL, access_token_expires_at = NULL,"
                " refresh_token_expires_at = NULL, updated_at = %s, state_changed_at = %s"
                " WHERE tenant = %s",
                (ConnectionState.REVOKED.value, reason, now, now, tenant),
            )
            await conn.execute(
                "UPDATE refresh_tokens SET used_at = %s WHERE tenant = %s AND used_at IS NULL",
                (now, tenant),
            )
            row = await _row(conn, tenant)
        assert row is not None
        return _connection(row)

    async def record_import(self, tenant: str, kind: ImportKind, at: datetime) -> None:
        sql = {
            ImportKind.SIE: "UPDATE connections SET last_sie_import_at = %s WHERE tenant = %s",
            ImportKind.LEDGERS:
                "UPDATE connections SET last_ledger_import_at = %s WHERE tenant = %s",
        }[kind]
        async with self._db.connection() as conn:
            await conn.execute(sql, (at, tenant))

    # -- row conversion ----------------------------------------------------------------
    def _encrypt_refresh(self, grant: TokenGrant, tenant: str) -> bytes | None:
        if grant.refresh_token is None:
            return None
        return self._cipher.encrypt(grant.refresh_token, tenant, "refresh_token")

    async def _log_refresh_token(
        self, conn: Conn, tenant: str, generation: int, token: str | None, now: datetime
    ) -> None:
        """One row per generation: the claim of its renewal (a service account's rows name
        no token)."""
        await conn.execute(
            "INSERT INTO refresh_tokens (tenant, generation, token_sha256, issued_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (tenant, generation) DO UPDATE SET"
            " token_sha256 = excluded.token_sha256, issued_at = excluded.issued_at,"
            " used_at = NULL",
            (tenant, generation, "" if token is None else _sha256(token), now),
        )

    def _tokens(self, tenant: str, row: DictRow | None) -> CurrentTokens:
        require_usable(None if row is None else row["state"],
                       "" if row is None else row["state_reason"])
        assert row is not None
        return CurrentTokens(
            tenant=tenant,
            generation=int(row["token_generation"]),
            access_token=self._cipher.decrypt(bytes(row["access_token"]), tenant,
                                              "access_token"),
            refresh_token=None if row["refresh_token"] is None else self._cipher.decrypt(
                bytes(row["refresh_token"]), tenant, "refresh_token"),
            access_expires_at=row["access_token_expires_at"],
            refresh_expires_at=row["refresh_token_expires_at"],
            last_refreshed_at=row["last_refreshed_at"],
            account_type=AccountType(row["account_type"]),
            fortnox_tenant_id=row["fortnox_tenant_id"],
        )


def _connection(row: dict[str, Any]) -> Connection:
    return Connection(
        tenant=row["tenant"],
        state=ConnectionState(row["state"]),
        reason=row["state_reason"],
        scopes=tuple(row["scopes"].split()),
        fortnox_tenant_id=row["fortnox_tenant_id"],
        company_name=row["company_name"],
        organisation_number=row["organisation_number"],
        connected_at=row["connected_at"],
        access_token_expires_at=row["access_token_expires_at"],
        refresh_token_expires_at=row["refresh_token_expires_at"],
        last_refreshed_at=row["last_refreshed_at"],
        last_sie_import_at=row["last_sie_import_at"],
        last_ledger_import_at=row["last_ledger_import_at"],
        account_type=AccountType(row["account_type"]),
        state_changed_at=row["state_changed_at"],
        last_export_at=row["last_export_at"],
    )
