"""The statements SQLite and PostgreSQL run alike, written once with ``?`` placeholders, and
the listings' page queries and tokens.

PostgreSQL's stores turn the placeholders into its own (``adapters.postgres.database.sql``).
Statements that differ by dialect or by locking stay in the backend that runs them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from datetime import timedelta
from typing import Any, LiteralString

from adapters.sql.rows import ExportRow
from core.imports import ImportKind, ImportRecord
from core.paging import encode_page_token
from core.voucher_export.history import ExportRecord, Refusal

#: Where a page of a newest-first listing starts: the instant and key of the previous page's
#: last row, as the backend compares them (SQLite: the stored text; PostgreSQL: a datetime).
Position = tuple[object, str]


def _names(names: Iterable[str], form: str = "{}") -> LiteralString:
    """Column names taken from a row type's or a record's fields, each put in ``form`` and
    listed: identifiers written in our code, never input, so safe in SQL."""
    listed = tuple(names)
    assert all(name.isidentifier() for name in listed), listed
    joined: LiteralString = ", ".join(form.format(name) for name in listed)
    return joined


def _fields(record: type[Any]) -> tuple[str, ...]:
    """A dataclass's field names: the columns of the same names."""
    return tuple(f.name for f in fields(record))


def _upsert(table: LiteralString, columns: tuple[str, ...], key: tuple[str, ...]
            ) -> LiteralString:
    """Inserts a row of every column, or replaces every column but the key's of the row the
    key finds."""
    updated = tuple(name for name in columns if name not in key)
    return ("INSERT INTO " + table + " (" + _names(columns) + ") VALUES ("
            + _names(columns, "?") + ") ON CONFLICT (" + _names(key) + ") DO UPDATE SET "
            + _names(updated, "{0} = excluded.{0}"))


# -- connections ---------------------------------------------------------------------------
#: A fresh connection, or a reconnect that replaces the old one's tokens for good.
SAVE_CONNECTION: LiteralString = (
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
    " state_changed_at = excluded.state_changed_at")

#: The rotated pair as the next generation, if the connection is still at the refreshed one.
STORE_REFRESHED: LiteralString = (
    "UPDATE connections SET access_token = ?, refresh_token = ?,"
    " token_generation = ?, access_token_expires_at = ?,"
    " refresh_token_expires_at = ?, last_refreshed_at = ?, scopes = ?,"
    " updated_at = ? WHERE tenant = ? AND token_generation = ? AND state = ?")

#: When a generation's refresh token was claimed, by which claim, until when
#: (``RefreshTokenRow``).
REFRESH_TOKEN_USE: LiteralString = (
    "SELECT used_at, claim_owner, lease_expires_at FROM refresh_tokens"
    " WHERE tenant = ? AND generation = ?")

#: A generation's refresh token claimed (or taken over): its new owner and lease end.
CLAIM_REFRESH: LiteralString = (
    "UPDATE refresh_tokens SET used_at = ?, claim_owner = ?, lease_expires_at = ?"
    " WHERE tenant = ? AND generation = ?")

#: The owner of a claim renews its lease.
RENEW_CLAIM: LiteralString = (
    "UPDATE refresh_tokens SET lease_expires_at = ? WHERE tenant = ? AND generation = ?"
    " AND claim_owner = ?")

#: Gives a refresh claim back, if it is still the owner's and the connection has not moved on
#: to another generation.
RELEASE_CLAIM: LiteralString = (
    "UPDATE refresh_tokens SET used_at = NULL, claim_owner = '', lease_expires_at = NULL"
    " WHERE tenant = ? AND generation = ? AND claim_owner = ?"
    " AND generation = (SELECT token_generation FROM connections WHERE tenant = ?)")

#: A connection still at the given generation and connected, now to be reconnected.
REQUIRE_RECONNECT: LiteralString = (
    "UPDATE connections SET state = ?, state_reason = ?, updated_at = ?,"
    " state_changed_at = ? WHERE tenant = ? AND token_generation = ? AND state = ?")

#: A service account's consent gone: its access token with it.
CONSENT_REVOKED: LiteralString = (
    "UPDATE connections SET state = ?, state_reason = ?, access_token = NULL,"
    " access_token_expires_at = NULL, updated_at = ?, state_changed_at = ?"
    " WHERE tenant = ? AND token_generation = ? AND state = ?")

#: A disconnect: every token deleted.
REVOKE: LiteralString = (
    "UPDATE connections SET state = ?, state_reason = ?, access_token = NULL,"
    " refresh_token = NULL, access_token_expires_at = NULL,"
    " refresh_token_expires_at = NULL, updated_at = ?, state_changed_at = ?"
    " WHERE tenant = ?")

#: Connected user connections whose refresh token was issued before a time, oldest first.
STALE_REFRESH_TOKENS: LiteralString = (
    "SELECT tenant FROM connections WHERE account_type = ? AND state = ?"
    " AND last_refreshed_at < ? ORDER BY last_refreshed_at LIMIT ?")

# -- imports -------------------------------------------------------------------------------
START_IMPORT: LiteralString = (
    "INSERT INTO imports (import_id, tenant, kind, status, requested_by, started_at,"
    " heartbeat_at, worker_id, balance_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")

#: A year, after the import's others.
ADD_YEAR: LiteralString = (
    "INSERT INTO import_years (import_id, position, financial_year_id, start_date,"
    " end_date, sha256, byte_size, voucher_count, error_count, warning_count,"
    " ledger, open_item_count) SELECT ?, COALESCE(MAX(position), -1) + 1, ?, ?, ?,"
    " ?, ?, ?, ?, ?, ?, ? FROM import_years WHERE import_id = ?")

#: The columns of ``import_years`` that make an ``ImportedYear``, in the import's order.
YEARS_OF_IMPORT: LiteralString = (
    "SELECT financial_year_id, start_date, end_date, sha256, byte_size, voucher_count,"
    " error_count, warning_count, ledger, open_item_count FROM import_years"
    " WHERE import_id = ? ORDER BY position")

#: The digests of the tenant's finished imports of the same years as a succeeded one.
DROP_SUPERSEDED: LiteralString = (
    "DELETE FROM voucher_digest_batches WHERE import_id IN (SELECT i.import_id FROM"
    " imports i JOIN imports this ON this.import_id = ? AND i.tenant ="
    " this.tenant WHERE i.import_id != this.import_id AND i.status != 'running')"
    " AND financial_year_id IN (SELECT financial_year_id FROM import_years"
    " WHERE import_id = ?)")

#: A batch of a running import's voucher digests; one staged again replaces the first.
STAGE_DIGESTS: LiteralString = (
    "INSERT INTO voucher_digest_batches (import_id, financial_year_id, first_index,"
    " voucher_keys, digests) VALUES (?, ?, ?, ?, ?) ON CONFLICT (import_id,"
    " financial_year_id, first_index) DO UPDATE SET voucher_keys = excluded.voucher_keys,"
    " digests = excluded.digests")

#: An import's digest batches of a year (``DigestRow``), in the file's order.
DIGESTS_OF_YEAR: LiteralString = (
    "SELECT first_index, voucher_keys, digests FROM voucher_digest_batches"
    " WHERE import_id = ? AND financial_year_id = ? ORDER BY first_index")

#: An import's digests, every year (a failed or cancelled import's are dropped at once).
DROP_DIGESTS: LiteralString = "DELETE FROM voucher_digest_batches WHERE import_id = ?"

#: The tenant's last successful SIE import of a year: what a new one is compared with.
PREVIOUS_YEAR: LiteralString = (
    "SELECT y.import_id, y.sha256 FROM import_years y JOIN imports i USING"
    " (import_id) WHERE i.tenant = ? AND i.status = 'succeeded' AND i.kind = 'sie'"
    " AND y.financial_year_id = ? ORDER BY i.started_at DESC LIMIT 1")

def imports_page(
    tenant: str, kind: ImportKind | None, after: Position | None, limit: int
) -> tuple[LiteralString, list[Any]]:
    """The ``WHERE ... LIMIT`` clause and parameters of a page of a tenant's imports (of one
    kind, where given), newest first."""
    return _page(tenant, {"kind": kind and kind.value}, ("started_at", "import_id"), after,
                 limit)


def import_page_token(record: ImportRecord) -> str:
    """The token of the imports page after ``record``."""
    return encode_page_token(record.started_at, record.import_id)


#: An import whose worker has not signalled for this long is taken to have died with it.
STALE_AFTER = timedelta(seconds=60)

#: A running import's worker signals it is alive, at the database's time.
HEARTBEAT: LiteralString = (
    "UPDATE imports SET heartbeat_at = ? WHERE import_id = ? AND status = 'running'")

#: Running imports whose worker stopped signalling before a time (the database's): failed,
#: ids returned.
FAIL_ABANDONED: LiteralString = (
    "UPDATE imports SET status = 'failed', finished_at = ?, error_reason ="
    " 'IMPORT_INTERRUPTED', error_message = 'The service stopped during the"
    " import.' WHERE status = 'running' AND heartbeat_at < ? RETURNING import_id")

# -- exports -------------------------------------------------------------------------------
#: A voucher's export claimed: a new row, or the old one replaced whole (``rows.claim_row``:
#: its outcome wiped for another attempt) under the next generation (the claim's fencing
#: token). Written from ``ExportRow``'s fields, so a new column needs no change here.
CLAIM_EXPORT: LiteralString = _upsert("voucher_exports", ExportRow._fields,
                                      ("tenant", "external_id"))

#: Every write of a claimed record names its fencing token: owner and generation.
_FENCED: LiteralString = (
    " WHERE tenant = ? AND external_id = ? AND worker_id = ? AND generation = ?")


def renew_export(lease_end: LiteralString) -> LiteralString:
    """The lease of a claim still held, extended to ``lease_end`` (the backend's expression of
    its clock plus the lease, one placeholder)."""
    return ("UPDATE voucher_exports SET lease_expires_at = " + lease_end + _FENCED
            + " AND status = 'pending'")


def mark_created(now: LiteralString) -> LiteralString:
    """Fortnox's voucher stored by the claim's holder (``now``: the backend's clock)."""
    return ("UPDATE voucher_exports SET status = 'created', voucher_series = ?,"
            " voucher_number = ?, financial_year_id = ?, exported_at = " + now + ","
            " lease_expires_at = NULL" + _FENCED)


#: Fortnox's refusal stored by the claim's holder: ``refused(refusal)``'s values, then the
#: fence's.
MARK_REJECTED: LiteralString = (
    "UPDATE voucher_exports SET status = 'rejected', " + _names(_fields(Refusal), "{} = ?")
    + ", lease_expires_at = NULL" + _FENCED)


def refused(refusal: Refusal) -> list[Any]:
    """``MARK_REJECTED``'s values of a refusal, before the fence's."""
    return [getattr(refusal, name) for name in _fields(Refusal)]


def mark_unknown(now: LiteralString) -> LiteralString:
    """A claim whose POST's answer was lost: its lease ends now, so a retry may take it over."""
    return ("UPDATE voucher_exports SET status = 'unknown', lease_expires_at = " + now
            + _FENCED + " AND status = 'pending'")


def exports_page(
    tenant: str, request_id: str, external_id: str, after: Position | None, limit: int
) -> tuple[LiteralString, list[Any]]:
    """The ``WHERE ... LIMIT`` clause and parameters of a page of a tenant's exports (of one
    request, or of one voucher, where given), newest first."""
    return _page(tenant, {"request_id": request_id, "external_id": external_id},
                 ("attempted_at", "external_id"), after, limit)


def export_page_token(record: ExportRecord) -> str:
    """The token of the exports page after ``record``."""
    return encode_page_token(record.attempted_at, record.external_id)


def _page(
    tenant: str, filters: dict[LiteralString, object], order: tuple[LiteralString, LiteralString],
    after: Position | None, limit: int,
) -> tuple[LiteralString, list[Any]]:
    """A page of a tenant's rows matching each filter with a value, newest first by ``order``
    (instant, key) from ``after``: ``limit + 1`` rows, so one more tells of another page."""
    where: LiteralString = "WHERE tenant = ?"
    params: list[Any] = [tenant]
    for column, value in filters.items():
        if value:
            where += " AND " + column + " = ?"
            params.append(value)
    instant, key = order
    if after is not None:
        where += " AND (" + instant + ", " + key + ") < (?, ?)"
        params += after
    return (where + " ORDER BY " + instant + " DESC, " + key + " DESC LIMIT ?",
            [*params, limit + 1])
