"""Connections, their encrypted tokens and the OAuth states, in SQLite.

Implements ``core.token_store.TokenStore``. ``claim_refresh`` marks the current generation's
row of ``refresh_tokens`` used inside ``BEGIN IMMEDIATE``, one writer across every process
sharing the file (see the port for the rules); its lease is dated by SQLite's own clock and
every write that settles it checks its owner. Every call runs on the store's own SQLite
thread.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlite_utils import Database

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
from adapters.sqlite.database import ThreadedStore, database_now, immediate, on_thread
from adapters.sqlite.rows import iso, select, select_one
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


def _optional_iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def _row(db: Database, tenant: str) -> ConnectionRow | None:
    return select_one(db, ConnectionRow, f"{SELECT_CONNECTION} WHERE c.tenant = ?", [tenant])


class SqliteTokenStore(ThreadedStore):
    """``core.token_store.TokenStore`` in SQLite: tokens AES-GCM encrypted at rest. Each
    public method is one call on the store's SQLite thread (``on_thread``)."""

    def __init__(self, path: Path, token_key: bytes) -> None:
        super().__init__(path)
        self._cipher = TokenCipher(token_key)

    # -- OAuth states ------------------------------------------------------------------
    @on_thread
    def create_state(self, db: Database, record: OAuthStateRecord) -> None:
        """Stores a new pending authorization."""
        with immediate(db):
            conn = db.conn
            conn.execute(
                "INSERT INTO oauth_states (state, tenant, redirect_uri, scopes,"
                " expected_organisation_number, created_at, expires_at, account_type)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.state,
                    record.tenant,
                    record.redirect_uri,
                    " ".join(record.scopes),
                    record.expected_organisation_number,
                    iso(record.created_at),
                    iso(record.expires_at),
                    record.account_type.value,
                ),
            )

    @on_thread
    def consume_state(self, db: Database, state: str, now: datetime) -> OAuthStateRecord:
        """Marks a state used and returns it; ``OAuthStateInvalid`` if unknown, used, expired."""
        with immediate(db):
            conn = db.conn
            row = select_one(db, OAuthStateRow,
                             f"SELECT {OAUTH_STATE_COLUMNS} FROM oauth_states WHERE state = ?",
                             [state])
            if row is None:
                raise OAuthStateInvalid("The OAuth state is unknown.", reason="OAUTH_STATE_UNKNOWN")
            require_unused_state(row.used_at is not None, row.outcome)
            if row.expires_at <= now:
                raise OAuthStateInvalid("The OAuth state has expired.",
                                        reason="OAUTH_STATE_EXPIRED")
            conn.execute("UPDATE oauth_states SET used_at = ? WHERE state = ?",
                         (iso(now), state))
        return oauth_state_record(row)

    @on_thread
    def fail_state(self, db: Database, state: str, outcome: str) -> None:
        """Records why the completion that used ``state`` made no connection."""
        with immediate(db):
            db.conn.execute("UPDATE oauth_states SET outcome = ? WHERE state = ?",
                            (outcome, state))

    @on_thread
    def purge_expired_states(self, db: Database, now: datetime) -> int:
        """Deletes the states that expired before ``now``."""
        with immediate(db):
            deleted: int = db.conn.execute(
                "DELETE FROM oauth_states WHERE expires_at < ?", (iso(now),)
            ).rowcount
        return deleted

    # -- connections -------------------------------------------------------------------
    @on_thread
    def save_connection(
        self, db: Database, tenant: str, grant: TokenGrant, link: CompanyLink,
        account_type: AccountType, state: str, now: datetime,
    ) -> Connection:
        """Stores a fresh connection (a reconnect replaces the old tokens for good) and marks
        ``state`` as having connected."""
        with immediate(db):
            conn = db.conn
            old = _row(db, tenant)
            generation = 1 if old is None else old.token_generation + 1
            conn.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE tenant = ? AND used_at IS NULL",
                (iso(now), tenant),
            )
            conn.execute(
                statements.SAVE_CONNECTION,
                (
                    tenant,
                    ConnectionState.CONNECTED.value,
                    link.fortnox_tenant_id,
                    link.company_name,
                    link.organisation_number,
                    " ".join(grant.scopes),
                    self._cipher.encrypt(grant.access_token, tenant, "access_token"),
                    encrypted_refresh_token(self._cipher, grant, tenant),
                    generation,
                    iso(grant.access_expires_at),
                    _optional_iso(grant.refresh_expires_at),
                    iso(now),
                    iso(now),
                    iso(now),
                    account_type.value,
                    iso(now),
                ),
            )
            _log_refresh_token(conn, tenant, generation, grant.refresh_token, now)
            conn.execute("UPDATE oauth_states SET outcome = ? WHERE state = ?",
                         (STATE_CONNECTED, state))
            row = _row(db, tenant)
        assert row is not None
        return connection_of(row)

    @on_thread
    def connection(self, db: Database, tenant: str) -> Connection | None:
        """The tenant's connection, or ``None`` if it never connected."""
        row = _row(db, tenant)
        return None if row is None else connection_of(row)

    @on_thread
    def list_connections(
        self, db: Database, which: ConnectionFilter, limit: int, after: str | None
    ) -> ConnectionPage:
        """Up to ``limit`` connections matching ``which`` after tenant ``after``."""
        where, params = ["c.tenant > ?"], [after or ""]
        if which.state is not None:
            where.append("c.state = ?")
            params.append(which.state.value)
        if which.account_type is not None:
            where.append("c.account_type = ?")
            params.append(which.account_type.value)
        rows = select(db, ConnectionRow,
                      f"{SELECT_CONNECTION} WHERE {' AND '.join(where)} ORDER BY c.tenant LIMIT ?",
                      [*params, limit + 1])
        page = tuple(connection_of(row) for row in rows[:limit])
        return ConnectionPage(page, page[-1].tenant if len(rows) > limit else None)

    @on_thread
    def stale_refresh_tokens(self, db: Database, issued_before: datetime, limit: int
                             ) -> list[str]:
        """Connected user connections with a refresh token older than ``issued_before``."""
        rows = db.conn.execute(
            statements.STALE_REFRESH_TOKENS,
            (AccountType.USER.value, ConnectionState.CONNECTED.value, iso(issued_before),
             limit),
        ).fetchall()
        return [str(tenant) for (tenant,) in rows]

    @on_thread
    def current_tokens(self, db: Database, tenant: str) -> CurrentTokens:
        """The usable tokens; raises if the tenant is not (or no longer) connected."""
        row = _row(db, tenant)
        return usable_tokens(self._cipher, tenant, row)

    @on_thread
    def claim_refresh(
        self, db: Database, tenant: str, stale_generation: int, lease: timedelta
    ) -> RefreshClaim:
        """Claims the right to spend the refresh token of ``stale_generation`` (see module)."""
        with immediate(db):
            tokens = usable_tokens(self._cipher, tenant, _row(db, tenant))
            if tokens.generation != stale_generation:
                return RefreshClaim(ClaimOutcome.REFRESHED_ELSEWHERE, tokens)
            now = database_now(db)
            claimed = select_one(db, RefreshTokenRow, statements.REFRESH_TOKEN_USE,
                                 [tenant, tokens.generation])
            if claimed is not None and claimed.busy(now):
                return RefreshClaim(ClaimOutcome.BUSY, tokens)
            claim_id = uuid.uuid4().hex
            db.conn.execute(statements.CLAIM_REFRESH, (iso(now), claim_id, iso(now + lease),
                                                      tenant, tokens.generation))
        took_over = claimed is not None and claimed.used_at is not None
        return RefreshClaim(ClaimOutcome.CLAIMED, tokens, claim_id, took_over)

    @on_thread
    def hold_claim(
        self, db: Database, tenant: str, generation: int, claim_id: str, lease: timedelta
    ) -> None:
        """Proves the claim is still ``claim_id``'s and renews its lease; ``ClaimLost``."""
        with immediate(db):
            self._require_claim(db, tenant, generation, claim_id)
            db.conn.execute(statements.RENEW_CLAIM, (iso(database_now(db) + lease), tenant,
                                                    generation, claim_id))

    def _require_claim(self, db: Database, tenant: str, generation: int, claim_id: str) -> None:
        """``ClaimLost`` unless ``claim_id`` owns the claim on the connection's current
        generation (inside the caller's write transaction)."""
        row = _row(db, tenant)
        claimed = select_one(db, RefreshTokenRow, statements.REFRESH_TOKEN_USE,
                             [tenant, generation])
        if (row is None or row.token_generation != generation
                or row.state != ConnectionState.CONNECTED.value
                or claimed is None or claimed.claim_owner != claim_id):
            raise ClaimLost(f"the refresh claim of generation {generation} is not held")

    @on_thread
    def release_claim(self, db: Database, tenant: str, generation: int, claim_id: str) -> None:
        """Gives a claim back when its refresh request certainly never reached Fortnox."""
        with immediate(db):
            db.conn.execute(statements.RELEASE_CLAIM, (tenant, generation, claim_id, tenant))

    @on_thread
    def complete_refresh(
        self, db: Database, tenant: str, generation: int, claim_id: str, grant: TokenGrant
    ) -> CurrentTokens:
        """Stores the rotated pair as ``generation + 1``, the old token marked used."""
        with immediate(db):
            conn = db.conn
            self._require_claim(db, tenant, generation, claim_id)
            now = database_now(db)
            conn.execute(
                "UPDATE refresh_tokens SET used_at = ?, lease_expires_at = NULL"
                " WHERE tenant = ? AND generation = ?",
                (iso(now), tenant, generation),
            )
            updated = conn.execute(
                statements.STORE_REFRESHED,
                (
                    self._cipher.encrypt(grant.access_token, tenant, "access_token"),
                    encrypted_refresh_token(self._cipher, grant, tenant),
                    generation + 1,
                    iso(grant.access_expires_at),
                    _optional_iso(grant.refresh_expires_at),
                    iso(now),
                    " ".join(grant.scopes),
                    iso(now),
                    tenant,
                    generation,
                    ConnectionState.CONNECTED.value,
                ),
            ).rowcount
            if updated == 1:
                _log_refresh_token(conn, tenant, generation + 1, grant.refresh_token, now)
            row = _row(db, tenant)
        return usable_tokens(self._cipher, tenant, row)

    @on_thread
    def require_reconnect(
        self, db: Database, tenant: str, generation: int, claim_id: str, reason: str
    ) -> None:
        """Fortnox refused the refresh token of ``generation``: the customer must log in."""
        with immediate(db):
            self._require_claim(db, tenant, generation, claim_id)
            now = iso(database_now(db))
            db.conn.execute(
                statements.REQUIRE_RECONNECT,
                (ConnectionState.RECONNECT_REQUIRED.value, reason, now, now, tenant, generation,
                 ConnectionState.CONNECTED.value),
            )

    @on_thread
    def consent_revoked(
        self, db: Database, tenant: str, generation: int, claim_id: str, reason: str
    ) -> None:
        """The service account's consent of ``generation`` is gone: ``REVOKED``, no token."""
        with immediate(db):
            self._require_claim(db, tenant, generation, claim_id)
            now = iso(database_now(db))
            db.conn.execute(
                statements.CONSENT_REVOKED,
                (ConnectionState.REVOKED.value, reason, now, now, tenant,
                 generation, ConnectionState.CONNECTED.value),
            )

    @on_thread
    def refresh_token_for_revocation(self, db: Database, tenant: str) -> str | None:
        """The stored refresh token whatever the state (to revoke it), or ``None``."""
        return stored_refresh_token(self._cipher, tenant, _row(db, tenant))

    @on_thread
    def revoke(self, db: Database, tenant: str, reason: str, now: datetime) -> Connection:
        """Deletes the tokens and marks the connection ``REVOKED``."""
        with immediate(db):
            conn = db.conn
            if _row(db, tenant) is None:
                raise ConnectionNotFound("The tenant is not connected to Fortnox.")
            conn.execute(
                statements.REVOKE,
                (ConnectionState.REVOKED.value, reason, iso(now), iso(now), tenant),
            )
            conn.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE tenant = ? AND used_at IS NULL",
                (iso(now), tenant),
            )
            row = _row(db, tenant)
        assert row is not None
        return connection_of(row)

    @on_thread
    def record_import(self, db: Database, tenant: str, kind: ImportKind, at: datetime) -> None:
        """Remembers the time of the last successful import of ``kind``."""
        column = {ImportKind.SIE: "last_sie_import_at",
                  ImportKind.LEDGERS: "last_ledger_import_at"}[kind]
        with immediate(db):
            conn = db.conn
            conn.execute(
                f"UPDATE connections SET {column} = ? WHERE tenant = ?", (iso(at), tenant)
            )


def _log_refresh_token(
    conn: sqlite3.Connection, tenant: str, generation: int, token: str | None, now: datetime
) -> None:
    """One row per generation: the claim of its renewal (a service account's rows name no
    token)."""
    conn.execute(
        "INSERT OR REPLACE INTO refresh_tokens (tenant, generation, token_sha256, issued_at)"
        " VALUES (?, ?, ?, ?)",
        (tenant, generation, token_digest(token), iso(now)),
    )
