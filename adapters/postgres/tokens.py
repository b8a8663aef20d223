"""Connections, their encrypted tokens and the OAuth states, in PostgreSQL.

Implements ``core.token_store.TokenStore``. Every change to a tenant's tokens first locks the
tenant's ``connections`` row (``SELECT ... FOR UPDATE``), so a refresh claim is single-flight
across every replica: whoever finds the generation already claimed waits for the next one.
Tokens are AES-GCM encrypted at rest exactly as in SQLite (``adapters.sql.crypto``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import LiteralString

from adapters.postgres.database import (
    Conn,
    PostgresDatabase,
    database_now,
    select,
    select_one,
    sql,
)
from adapters.sql import statements
from adapters.sql.crypto import TokenCipher
from adapters.sql.rows import (
    OAUTH_STATE_COLUMNS,
    SELECT_CONNECTION,
    ConnectionRow,
    OAuthStateRow,
    RefreshTokenRow,
    connection_of,
    encrypted_refresh_token,
    oauth_state_record,
    stored_refresh_token,
    token_digest,
    usable_tokens,
)
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
    ClaimLost,
    ClaimOutcome,
    CompanyLink,
    CurrentTokens,
    OAuthStateRecord,
    RefreshClaim,
    TokenGrant,
    require_unused_state,
)

_CONNECTED = ConnectionState.CONNECTED.value


async def _row(conn: Conn, tenant: str, *, lock: bool = False) -> ConnectionRow | None:
    """The tenant's connection; with ``lock``, its row locked until the transaction ends."""
    query: LiteralString = SELECT_CONNECTION + " WHERE c.tenant = %s"
    return await select_one(conn, ConnectionRow, query + " FOR UPDATE OF c" if lock else query,
                            (tenant,))


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
            row = await select_one(
                conn, OAuthStateRow,
                "SELECT " + OAUTH_STATE_COLUMNS + " FROM oauth_states WHERE state = %s FOR UPDATE",
                (state,))
            if row is None:
                raise OAuthStateInvalid("The OAuth state is unknown.", reason="OAUTH_STATE_UNKNOWN")
            require_unused_state(row.used_at is not None, row.outcome)
            if row.expires_at <= now:
                raise OAuthStateInvalid("The OAuth state has expired.",
                                        reason="OAUTH_STATE_EXPIRED")
            await conn.execute("UPDATE oauth_states SET used_at = %s WHERE state = %s",
                               (now, state))
        return oauth_state_record(row)

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
            generation = 1 if old is None else old.token_generation + 1
            await conn.execute(
                "UPDATE refresh_tokens SET used_at = %s WHERE tenant = %s AND used_at IS NULL",
                (now, tenant),
            )
            await conn.execute(
                sql(statements.SAVE_CONNECTION),
                (
                    tenant, _CONNECTED, link.fortnox_tenant_id, link.company_name,
                    link.organisation_number, " ".join(grant.scopes),
                    self._cipher.encrypt(grant.access_token, tenant, "access_token"),
                    encrypted_refresh_token(self._cipher, grant, tenant),
                    generation, grant.access_expires_at, grant.refresh_expires_at,
                    now, now, now, account_type.value, now,
                ),
            )
            await _log_refresh_token(conn, tenant, generation, grant.refresh_token, now)
            await conn.execute("UPDATE oauth_states SET outcome = %s WHERE state = %s",
                               (STATE_CONNECTED, state))
            row = await _row(conn, tenant)
        assert row is not None
        return connection_of(row)

    async def connection(self, tenant: str) -> Connection | None:
        async with self._db.connection() as conn:
            row = await _row(conn, tenant)
        return None if row is None else connection_of(row)

    async def list_connections(
        self, which: ConnectionFilter, limit: int, after: str | None
    ) -> ConnectionPage:
        async with self._db.connection() as conn:
            rows = await select(
                conn, ConnectionRow, SELECT_CONNECTION + " WHERE c.tenant > %s"
                " AND (%s::text IS NULL OR c.state = %s)"
                " AND (%s::text IS NULL OR c.account_type = %s)"
                " ORDER BY c.tenant LIMIT %s",
                (after or "", *(2 * [which.state and which.state.value]),
                 *(2 * [which.account_type and which.account_type.value]), limit + 1),
            )
        page = tuple(connection_of(row) for row in rows[:limit])
        return ConnectionPage(page, page[-1].tenant if len(rows) > limit else None)

    async def stale_refresh_tokens(self, issued_before: datetime, limit: int) -> list[str]:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                sql(statements.STALE_REFRESH_TOKENS),
                (AccountType.USER.value, _CONNECTED, issued_before, limit),
            )
            return [str(row["tenant"]) for row in await cursor.fetchall()]

    async def current_tokens(self, tenant: str) -> CurrentTokens:
        async with self._db.connection() as conn:
            row = await _row(conn, tenant)
        return usable_tokens(self._cipher, tenant, row)

    async def claim_refresh(
        self, tenant: str, stale_generation: int, lease: timedelta
    ) -> RefreshClaim:
        async with self._db.transaction() as conn:
            tokens = usable_tokens(self._cipher, tenant, await _row(conn, tenant, lock=True))
            if tokens.generation != stale_generation:
                return RefreshClaim(ClaimOutcome.REFRESHED_ELSEWHERE, tokens)
            now = await database_now(conn)
            claimed = await select_one(conn, RefreshTokenRow, sql(statements.REFRESH_TOKEN_USE),
                                       (tenant, tokens.generation))
            if claimed is not None and claimed.busy(now):
                return RefreshClaim(ClaimOutcome.BUSY, tokens)
            claim_id = uuid.uuid4().hex
            await conn.execute(sql(statements.CLAIM_REFRESH),
                               (now, claim_id, now + lease, tenant, tokens.generation))
        took_over = claimed is not None and claimed.used_at is not None
        return RefreshClaim(ClaimOutcome.CLAIMED, tokens, claim_id, took_over)

    async def hold_claim(
        self, tenant: str, generation: int, claim_id: str, lease: timedelta
    ) -> None:
        async with self._db.transaction() as conn:
            await _require_claim(conn, tenant, generation, claim_id)
            now = await database_now(conn)
            await conn.execute(sql(statements.RENEW_CLAIM),
                               (now + lease, tenant, generation, claim_id))

    async def release_claim(self, tenant: str, generation: int, claim_id: str) -> None:
        async with self._db.connection() as conn:
            await conn.execute(sql(statements.RELEASE_CLAIM),
                               (tenant, generation, claim_id, tenant))

    async def complete_refresh(
        self, tenant: str, generation: int, claim_id: str, grant: TokenGrant
    ) -> CurrentTokens:
        async with self._db.transaction() as conn:
            await _require_claim(conn, tenant, generation, claim_id)
            now = await database_now(conn)
            await conn.execute(
                "UPDATE refresh_tokens SET used_at = %s, lease_expires_at = NULL"
                " WHERE tenant = %s AND generation = %s",
                (now, tenant, generation),
            )
            cursor = await conn.execute(
                sql(statements.STORE_REFRESHED),
                (
                    self._cipher.encrypt(grant.access_token, tenant, "access_token"),
                    encrypted_refresh_token(self._cipher, grant, tenant),
                    generation + 1, grant.access_expires_at, grant.refresh_expires_at, now,
                    " ".join(grant.scopes), now, tenant, generation, _CONNECTED,
                ),
            )
            if cursor.rowcount == 1:
                await _log_refresh_token(
                    conn, tenant, generation + 1, grant.refresh_token, now)
            row = await _row(conn, tenant)
        return usable_tokens(self._cipher, tenant, row)

    async def require_reconnect(
        self, tenant: str, generation: int, claim_id: str, reason: str
    ) -> None:
        async with self._db.transaction() as conn:
            await _require_claim(conn, tenant, generation, claim_id)
            now = await database_now(conn)
            await conn.execute(
                sql(statements.REQUIRE_RECONNECT),
                (ConnectionState.RECONNECT_REQUIRED.value, reason, now, now, tenant, generation,
                 _CONNECTED),
            )

    async def consent_revoked(
        self, tenant: str, generation: int, claim_id: str, reason: str
    ) -> None:
        async with self._db.transaction() as conn:
            await _require_claim(conn, tenant, generation, claim_id)
            now = await database_now(conn)
            await conn.execute(
                sql(statements.CONSENT_REVOKED),
                (ConnectionState.REVOKED.value, reason, now, now, tenant, generation,
                 _CONNECTED),
            )

    async def refresh_token_for_revocation(self, tenant: str) -> str | None:
        async with self._db.connection() as conn:
            row = await _row(conn, tenant)
        return stored_refresh_token(self._cipher, tenant, row)

    async def revoke(self, tenant: str, reason: str, now: datetime) -> Connection:
        async with self._db.transaction() as conn:
            if await _row(conn, tenant, lock=True) is None:
                raise ConnectionNotFound("The tenant is not connected to Fortnox.")
            await conn.execute(
                sql(statements.REVOKE),
                (ConnectionState.REVOKED.value, reason, now, now, tenant),
            )
            await conn.execute(
                "UPDATE refresh_tokens SET used_at = %s WHERE tenant = %s AND used_at IS NULL",
                (now, tenant),
            )
            row = await _row(conn, tenant)
        assert row is not None
        return connection_of(row)

    async def record_import(self, tenant: str, kind: ImportKind, at: datetime) -> None:
        statement = {
            ImportKind.SIE: "UPDATE connections SET last_sie_import_at = %s WHERE tenant = %s",
            ImportKind.LEDGERS:
                "UPDATE connections SET last_ledger_import_at = %s WHERE tenant = %s",
        }[kind]
        async with self._db.connection() as conn:
            await conn.execute(statement, (at, tenant))


async def _require_claim(conn: Conn, tenant: str, generation: int, claim_id: str) -> None:
    """``ClaimLost`` unless ``claim_id`` owns the claim on the connection's current generation
    (the connection's row stays locked until the caller's transaction ends)."""
    row = await _row(conn, tenant, lock=True)
    claimed = await select_one(conn, RefreshTokenRow, sql(statements.REFRESH_TOKEN_USE),
                               (tenant, generation))
    if (row is None or row.token_generation != generation or row.state != _CONNECTED
            or claimed is None or claimed.claim_owner != claim_id):
        raise ClaimLost(f"the refresh claim of generation {generation} is not held")


async def _log_refresh_token(
    conn: Conn, tenant: str, generation: int, token: str | None, now: datetime
) -> None:
    """One row per generation: the claim of its renewal (a service account's rows name
    no token)."""
    await conn.execute(
        "INSERT INTO refresh_tokens (tenant, generation, token_sha256, issued_at)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (tenant, generation) DO UPDATE SET"
        " token_sha256 = excluded.token_sha256, issued_at = excluded.issued_at,"
        " used_at = NULL, claim_owner = '', lease_expires_at = NULL",
        (tenant, generation, token_digest(token), now),
    )
