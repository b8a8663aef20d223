"""Connections, their encrypted tokens and the OAuth states, in SQLite.

Implements ``core.token_store.TokenStore``. ``claim_refresh`` marks the current generation's
row of ``refresh_tokens`` used inside ``BEGIN IMMEDIATE``, one writer across every process
sharing the file (see the port for the rules). Every call runs on the store's own SQLite
thread.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from adapters.store.crypto import TokenCipher
from adapters.store.database import SqliteThread, immediate
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


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _time(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


#: A connection with the time of the tenant's last voucher sent to Fortnox.
_SELECT = (
    "SELECT c.*, (SELECT MAX(v.exported_at) FROM voucher_exports v WHERE v.tenant = c.tenant)"
    " AS last_export_at FROM connections c"
)



def _row(conn: sqlite3.Connection, tenant: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        f"{_SELECT} WHERE c.tenant = ?", (tenant,)
    ).fetchone()
    return row


class SqliteTokenStore:
    """``core.token_store.TokenStore`` in SQLite: tokens AES-GCM encrypted at rest."""

    def __init__(self, path: Path, token_key: bytes) -> None:
        self._thread = SqliteThread(path, rows_by_name=True)
        self._sync = _SyncTokens(token_key)

    async def aclose(self) -> None:
        """Closes the connection after the calls already queued."""
        await self._thread.aclose()

    async def create_state(self, record: OAuthStateRecord) -> None:
        await self._thread.run(lambda db: self._sync.create_state(db, record))

    async def consume_state(self, state: str, now: datetime) -> OAuthStateRecord:
        return await self._thread.run(lambda db: self._sync.consume_state(db, state, now))

    async def fail_state(self, state: str, outcome: str) -> None:
        await self._thread.run(lambda db: self._sync.fail_state(db, state, outcome))

    async def purge_expired_states(self, now: datetime) -> int:
        return await self._thread.run(lambda db: self._sync.purge_expired_states(db, now))

    async def save_connection(
        self, tenant: str, grant: TokenGrant, link: CompanyLink, account_type: AccountType,
        state: str, now: datetime,
    ) -> Connection:
        return await self._thread.run(lambda db: self._sync.save_connection(
            db, tenant, grant, link, account_type, state, now))

    async def list_connections(
        self, which: ConnectionFilter, limit: int, after: str | None
    ) -> ConnectionPage:
        return await self._thread.run(
            lambda db: self._sync.list_connections(db, which, limit, after))

    async def stale_refresh_tokens(self, issued_before: datetime, limit: int) -> list[str]:
        return await self._thread.run(
            lambda db: self._sync.stale_refresh_tokens(db, issued_before, limit))

    async def connection(self, tenant: str) -> Connection | None:
        return await self._thread.run(lambda db: self._sync.connection(db, tenant))

    async def current_tokens(self, tenant: str) -> CurrentTokens:
        return await self._thread.run(lambda db: self._sync.current_tokens(db, tenant))

    async def claim_refresh(
        self, tenant: str, stale_generation: int, now: datetime, lease: timedelta
    ) -> RefreshClaim:
        return await self._thread.run(
            lambda db: self._sync.claim_refresh(db, tenant, stale_generation, now, lease))

    async def release_claim(self, tenant: str, generation: int) -> None:
        await self._thread.run(lambda db: self._sync.release_claim(db, tenant, generation))

    async def complete_refresh(
        self, tenant: str, generation: int, grant: TokenGrant, now: datetime
    ) -> CurrentTokens:
        return await self._thread.run(
            lambda db: self._sync.complete_refresh(db, tenant, generation, grant, now))

    async def require_reconnect(
        self, tenant: str, generation: int, reason: str, now: datetime
    ) -> None:
        await self._thread.run(
            lambda db: self._sync.require_reconnect(db, tenant, generation, reason, now))

    async def consent_revoked(
        self, tenant: str, generation: int, reason: str, now: datetime
    ) -> None:
        await self._thread.run(
            lambda db: self._sync.consent_revoked(db, tenant, generation, reason, now))

    async def refresh_token_for_revocation(self, tenant: str) -> str | None:
        return await self._thread.run(
            lambda db: self._sync.refresh_token_for_revocation(db, tenant))

    async def revoke(self, tenant: str, reason: str, now: datetime) -> Connection:
        return await self._thread.run(lambda db: self._sync.revoke(db, tenant, reason, now))

    async def record_import(self, tenant: str, kind: ImportKind, at: datetime) -> None:
        await self._thread.run(lambda db: self._sync.record_import(db, tenant, kind, at))


class _SyncTokens:
    """The store's statements, run on its SQLite thread (each public method is one call)."""

    def __init__(self, token_key: bytes) -> None:
        self._cipher = TokenCipher(token_key)

    # -- OAuth states ------------------------------------------------------------------
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
                    _iso(record.created_at),
                    _iso(record.expires_at),
                    record.account_type.value,
                ),
            )

    def consume_state(self, db: Database, state: str, now: datetime) -> OAuthStateRecord:
        """Marks a state used and returns it; ``OAuthStateInvalid`` if unknown, used, expired."""
        with immediate(db):
            conn = db.conn
            row = conn.execute("SELECT * FROM oauth_states WHERE state = ?", (state,)).fetchone()
            if row is None:
                raise OAuthStateInvalid("The OAuth state is unknown.", reason="OAUTH_STATE_UNKNOWN")
            require_unused_state(row["used_at"] is not None, row["outcome"])
            expires_at = datetime.fromisoformat(row["expires_at"])
            if expires_at <= now:
                raise OAuthStateInvalid("The OAuth state has expired.",
                                        reason="OAUTH_STATE_EXPIRED")
            conn.execute("UPDATE oauth_states SET used_at = ? WHERE state = ?",
                         (_iso(now), state))
        return OAuthStateRecord(
            state=row["state"],
            tenant=row["tenant"],
            redirect_uri=row["redirect_uri"],
            scopes=tuple(row["scopes"].split()),
            expected_organisation_number=row["expected_organisation_number"],
            created_at=datetime.fromisoformat(row["created_at"]),
            expires_at=expires_at,
            account_type=AccountType(row["account_type"]),
        )

    def fail_state(self, db: Database, state: str, outcome: str) -> None:
        """Records why the completion that used ``state`` made no connection."""
        with immediate(db):
            db.conn.execute("UPDATE oauth_states SET outcome = ? WHERE state = ?",
                            (outcome, state))

    def purge_expired_states(self, db: Database, now: datetime) -> int:
        """Deletes the states that expired before ``now``."""
        with immediate(db):
            deleted: int = db.conn.execute(
                "DELETE FROM oauth_states WHERE expires_at < ?", (_iso(now),)
            ).rowcount
        return deleted

    # -- connections -------------------------------------------------------------------
    def save_connection(
        self, db: Database, tenant: str, grant: TokenGrant, link: CompanyLink,
        account_type: AccountType, state: str, now: datetime,
    ) -> Connection:
        """Stores a fresh connection (a reconnect replaces the old tokens for good) and marks
        ``state`` as having connected."""
        with immediate(db):
            conn = db.conn
            old = _row(db.conn, tenant)
            generation = 1 if old is None else int(old["token_generation"]) + 1
            conn.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE tenant = ? AND used_at IS NULL",
                (_iso(now), tenant),
            )
            conn.execute(
                "INSERT INTO connections (tenant, state, state_reason, fortnox_tenant_id,"
                " company_name, organisation_number, scopes, access_token, refresh_token,"
                " token_generation, access_token_expires_at, refresh_token_expires_at,"
                " last_refreshed_at, connected_at, updated_at, account_type, state_changed_at)"
                " VALUES (?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
                    tenant,
                    ConnectionState.CONNECTED.value,
                    link.fortnox_tenant_id,
                    link.company_name,
                    link.organisation_number,
                    " ".join(grant.scopes),
                    self._cipher.encrypt(grant.access_token, tenant, "access_token"),
                    self._encrypt_refresh(grant, tenant),
                    generation,
                    _iso(grant.access_expires_at),
                    _iso(grant.refresh_expires_at),
                    _iso(now),
                    _iso(now),
                    _iso(now),
                    account_type.value,
                    _iso(now),
                ),
            )
            self._log_refresh_token(conn, tenant, generation, grant.refresh_token, now)
            conn.execute("UPDATE oauth_states SET outcome = ? WHERE state = ?",
                         (STATE_CONNECTED, state))
            row = _row(db.conn, tenant)
        assert row is not None
        return self._connection(row)

    def connection(self, db: Database, tenant: str) -> Connection | None:
        """The tenant's connection, or ``None`` if it never connected."""
        row = _row(db.conn, tenant)
        return None if row is None else self._connection(row)

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
        rows = db.conn.execute(
            f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY c.tenant LIMIT ?",
            (*params, limit + 1),
        ).fetchall()
        page = tuple(self._connection(row) for row in rows[:limit])
        return ConnectionPage(page, page[-1].tenant if len(rows) > limit else None)

    def stale_refresh_tokens(self, db: Database, issued_before: datetime, limit: int
                             ) -> list[str]:
        """Connected user connections with a refresh token older than ``issued_before``."""
        rows = db.conn.execute(
            "SELECT tenant FROM connections WHERE account_type = ? AND state = ?"
            " AND last_refreshed_at < ? ORDER BY last_refreshed_at LIMIT ?",
            (AccountType.USER.value, ConnectionState.CONNECTED.value, _iso(issued_before),
             limit),
        ).fetchall()
        return [str(row["tenant"]) for row in rows]

    def current_tokens(self, db: Database, tenant: str) -> CurrentTokens:
        """The usable tokens; raises if the tenant is not (or no longer) connected."""
        row = _row(db.conn, tenant)
        return self._tokens(tenant, row)

    def claim_refresh(
        self, db: Database, tenant: str, stale_generation: int, now: datetime, lease: timedelta
    ) -> RefreshClaim:
        """Claims the right to spend the refresh token of ``stale_generation`` (see module)."""
        with immediate(db):
            conn = db.conn
            tokens = self._tokens(tenant, _row(db.conn, tenant))
            if tokens.generation != stale_generation:
                return RefreshClaim(ClaimOutcome.REFRESHED_ELSEWHERE, tokens)
            claimed = conn.execute(
                "SELECT used_at FROM refresh_tokens WHERE tenant = ? AND generation = ?",
                (tenant, tokens.generation),
            ).fetchone()
            used_at = _time(claimed["used_at"]) if claimed is not None else None
            if used_at is not None and used_at > now - lease:
                return RefreshClaim(ClaimOutcome.BUSY, tokens)
            conn.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE tenant = ? AND generation = ?",
                (_iso(now), tenant, tokens.generation),
            )
        return RefreshClaim(ClaimOutcome.CLAIMED, tokens)

    def release_claim(self, db: Database, tenant: str, generation: int) -> None:
        """Gives a claim back when its refresh request certainly never reached Fortnox."""
        with immediate(db):
            conn = db.conn
            conn.execute(
                "UPDATE refresh_tokens SET used_at = NULL WHERE tenant = ? AND generation = ?"
                " AND generation = (SELECT token_generation FROM connections WHERE tenant = ?)",
                (tenant, generation, tenant),
            )

    def complete_refresh(
        self, db: Database, tenant: str, generation: int, grant: TokenGrant, now: datetime
    ) -> CurrentTokens:
        """Stores the rotated pair as ``generation + 1``, the old token marked used."""
        with immediate(db):
            conn = db.conn
            conn.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE tenant = ? AND generation = ?",
                (_iso(now), tenant, generation),
            )
            updated = conn.execute(
                "UPDATE connections SET access_token = ?, refresh_token = ?,"
                " token_generation = ?, access_token_expires_at = ?,"
                " refresh_token_expires_at = ?, last_refreshed_at = ?, scopes = ?,"
                " updated_at = ? WHERE tenant = ? AND token_generation = ? AND state = ?",
                (
                    self._cipher.encrypt(grant.access_token, tenant, "access_token"),
                    self._encrypt_refresh(grant, tenant),
                    generation + 1,
                    _iso(grant.access_expires_at),
                    _iso(grant.refresh_expires_at),
                    _iso(now),
                    " ".join(grant.scopes),
                    _iso(now),
                    tenant,
                    generation,
                    ConnectionState.CONNECTED.value,
                ),
            ).rowcount
            if updated == 1:
                self._log_refresh_token(conn, tenant, generation + 1, grant.refresh_token, now)
            row = _row(db.conn, tenant)
        return self._tokens(tenant, row)

    def require_reconnect(
        self, db: Database, tenant: str, generation: int, reason: str, now: datetime
    ) -> None:
        """Fortnox refused the refresh token of ``generation``: the customer must log in."""
        with immediate(db):
            conn = db.conn
            conn.execute(
                "UPDATE connections SET state = ?, state_reason = ?, updated_at = ?,"
                " state_changed_at = ? WHERE tenant = ? AND token_generation = ? AND state = ?",
                (
                    ConnectionState.RECONNECT_REQUIRED.value,
                    reason,
                    _iso(now),
                    _iso(now),
                    tenant,
                    generation,
                    ConnectionState.CONNECTED.value,
                ),
            )

    def consent_revoked(
        self, db: Database, tenant: str, generation: int, reason: str, now: datetime
    ) -> None:
        """The service account's consent of ``generation`` is gone: ``REVOKED``, no token."""
        with immediate(db):
            db.conn.execute(
                "UPDATE connections SET state = ?, state_reason = ?, access_token = NULL,"
                " access_token_expires_at = NULL, updated_at = ?, state_changed_at = ?"
                " WHERE tenant = ? AND token_generation = ? AND state = ?",
                (ConnectionState.REVOKED.value, reason, _iso(now), _iso(now), tenant,
                 generation, ConnectionState.CONNECTED.value),
            )

    def refresh_token_for_revocation(self, db: Database, tenant: str) -> str | None:
        """The stored refresh token whatever the state (to revoke it), or ``None``."""
        row = _row(db.conn, tenant)
        if row is None or row["refresh_token"] is None:
            return None
        return self._cipher.decrypt(row["refresh_token"], tenant, "refresh_token")

    def revoke(self, db: Database, tenant: str, reason: str, now: datetime) -> Connection:
        """Deletes the tokens and marks the connection ``REVOKED``."""
        with immediate(db):
            conn = db.conn
            if _row(db.conn, tenant) is None:
                raise ConnectionNotFound("The tenant is not connected to Fortnox.")
            conn.execute(
                "UPDATE connections SET state = ?, state_reason = ?, access_token = NULL,"
                " refresh_token = NULL, access_token_expires_at = NULL,"
                " refresh_token_expires_at = NULL, updated_at = ?, state_changed_at = ?"
                " WHERE tenant = ?",
                (ConnectionState.REVOKED.value, reason, _iso(now), _iso(now), tenant),
            )
            conn.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE tenant = ? AND used_at IS NULL",
                (_iso(now), tenant),
            )
            row = _row(db.conn, tenant)
        assert row is not None
        return self._connection(row)

    def record_import(self, db: Database, tenant: str, kind: ImportKind, at: datetime) -> None:
        """Remembers the time of the last successful import of ``kind``."""
        column = {ImportKind.SIE: "last_sie_import_at",
                  ImportKind.LEDGERS: "last_ledger_import_at"}[kind]
        with immediate(db):
            conn = db.conn
            conn.execute(
                f"UPDATE connections SET {column} = ? WHERE tenant = ?", (_iso(at), tenant)
            )

    # -- row conversion ----------------------------------------------------------------
    def _encrypt_refresh(self, grant: TokenGrant, tenant: str) -> bytes | None:
        if grant.refresh_token is None:
            return None
        return self._cipher.encrypt(grant.refresh_token, tenant, "refresh_token")

    def _log_refresh_token(
        self, conn: Any, tenant: str, generation: int, token: str | None, now: datetime
    ) -> None:
        """One row per generation: the claim of its renewal (a service account's rows name
        no token)."""
        conn.execute(
            "INSERT OR REPLACE INTO refresh_tokens (tenant, generation, token_sha256, issued_at)"
            " VALUES (?, ?, ?, ?)",
            (tenant, generation, "" if token is None else _sha256(token), _iso(now)),
        )

    def _tokens(self, tenant: str, row: sqlite3.Row | None) -> CurrentTokens:
        require_usable(None if row is None else row["state"],
                       "" if row is None else row["state_reason"])
        assert row is not None
        refresh = row["refresh_token"]
        return CurrentTokens(
            tenant=tenant,
            generation=int(row["token_generation"]),
            access_token=self._cipher.decrypt(row["access_token"], tenant, "access_token"),
            refresh_token=None if refresh is None else self._cipher.decrypt(
                refresh, tenant, "refresh_token"),
            access_expires_at=datetime.fromisoformat(row["access_token_expires_at"]),
            refresh_expires_at=_time(row["refresh_token_expires_at"]),
            last_refreshed_at=datetime.fromisoformat(row["last_refreshed_at"]),
            account_type=AccountType(row["account_type"]),
            fortnox_tenant_id=row["fortnox_tenant_id"],
        )

    @staticmethod
    def _connection(row: sqlite3.Row) -> Connection:
        values: dict[str, Any] = dict(row)
        return Connection(
            tenant=values["tenant"],
            state=ConnectionState(values["state"]),
            reason=values["state_reason"],
            scopes=tuple(values["scopes"].split()),
            fortnox_tenant_id=values["fortnox_tenant_id"],
            company_name=values["company_name"],
            organisation_number=values["organisation_number"],
            connected_at=_time(values["connected_at"]),
            access_token_expires_at=_time(values["access_token_expires_at"]),
            refresh_token_expires_at=_time(values["refresh_token_expires_at"]),
            last_refreshed_at=_time(values["last_refreshed_at"]),
            last_sie_import_at=_time(values["last_sie_import_at"]),
            last_ledger_import_at=_time(values["last_ledger_import_at"]),
            account_type=AccountType(values["account_type"]),
            state_changed_at=_time(values["state_changed_at"]),
            last_export_at=_time(values["last_export_at"]),
        )
