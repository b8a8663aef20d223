"""The stores' rows by name, and the records they make: the same for SQLite and PostgreSQL.

Each backend reads a row into one of these types (SQLite parses the ISO text it keeps dates and
times in; PostgreSQL's columns are dates and times already), so how a row becomes a domain
record is written once. What differs stays in the backends: the SQL dialect, the locking, the
threading.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import fields
from datetime import date, datetime
from typing import Any, LiteralString, NamedTuple

from adapters.sql.crypto import TokenCipher
from core.connections import AccountType, Connection, ConnectionState
from core.imports import ImportedYear, ImportKind, ImportRecord, ImportStatus, VoucherChanges
from core.token_store import CurrentTokens, OAuthStateRecord, TokenGrant, require_usable
from core.voucher_digest import DigestBatch, compare
from core.voucher_export.history import ExportRecord, ExportStatus, Fence, parse_places
from core.voucher_export.model import Outcome, VoucherResult

_OUTCOMES = {ExportStatus.CREATED: Outcome.CREATED, ExportStatus.REJECTED: Outcome.REJECTED}
_UNSETTLED_TEXT = {
    ExportStatus.PENDING: ("EXPORT_PENDING", "The voucher was about to be posted."),
    ExportStatus.UNKNOWN: ("FORTNOX_OUTCOME_UNKNOWN", "Fortnox's answer to the POST was lost."),
}


class ExportRow(NamedTuple):
    """A row of ``voucher_exports``. A claim writes it whole
    (``adapters.sql.statements.CLAIM_EXPORT``), the outcome's columns, those with a default, at
    their default; a result's field is read from the column of the same name
    (``export_record``)."""

    tenant: str
    external_id: str
    request_id: str
    payload_sha256: str
    marker: str
    status: str
    financial_year_id: int
    requested_by: str
    attempted_at: datetime
    worker_id: str
    lease_expires_at: datetime | None
    generation: int
    places: str
    voucher_series: str = ""
    voucher_number: int = 0
    reason: str = ""
    message: str = ""
    fortnox_code: str = ""
    fortnox_message: str = ""
    exported_at: datetime | None = None


def _columns(row_type: Any) -> LiteralString:
    """A row type's fields as a column list: names written in this module, safe in SQL."""
    columns: LiteralString = ", ".join(row_type._fields)
    return columns


EXPORT_COLUMNS = _columns(ExportRow)
#: The result's fields kept in the column of the same name; ``series`` and ``number`` are kept
#: as ``voucher_series`` and ``voucher_number``, the outcome as the status.
_RESULT_COLUMNS = tuple(f.name for f in fields(VoucherResult) if f.name in ExportRow._fields)


def claim_row(
    tenant: str, external_id: str, request_id: str, payload_sha256: str, marker: str,
    financial_year_id: int, requested_by: str, now: datetime, owner: str, lease_end: datetime,
    fence: Fence, places: str,
) -> ExportRow:
    """The row a claim writes: ``PENDING`` under the claim's token, no outcome yet."""
    return ExportRow(
        tenant=tenant, external_id=external_id, request_id=request_id,
        payload_sha256=payload_sha256, marker=marker, status=ExportStatus.PENDING.value,
        financial_year_id=financial_year_id, requested_by=requested_by, attempted_at=now,
        worker_id=owner, lease_expires_at=lease_end, generation=fence.generation,
        places=places)


def export_record(row: ExportRow) -> ExportRecord:
    """The export record of a row; an unsettled one explains itself in its result."""
    status = ExportStatus(row.status)
    kept: dict[str, Any] = {name: getattr(row, name) for name in _RESULT_COLUMNS}
    kept["reason"], kept["message"] = _UNSETTLED_TEXT.get(status, (row.reason, row.message))
    result = VoucherResult(
        **kept, outcome=_OUTCOMES.get(status, Outcome.NOT_ATTEMPTED),
        series=row.voucher_series, number=row.voucher_number)
    return ExportRecord(
        tenant=row.tenant, external_id=row.external_id, request_id=row.request_id,
        payload_sha256=row.payload_sha256, marker=row.marker, status=status, result=result,
        requested_by=row.requested_by, attempted_at=row.attempted_at, owner=row.worker_id,
        lease_expires_at=row.lease_expires_at, generation=int(row.generation),
        places=parse_places(row.places),
    )


class ImportRow(NamedTuple):
    """A row of ``imports`` (its years are rows of ``import_years``: ``ImportedYear``)."""

    import_id: str
    tenant: str
    kind: str
    status: str
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    error_reason: str
    error_message: str
    balance_date: date | None


IMPORT_COLUMNS = _columns(ImportRow)


def import_record(row: ImportRow, years: tuple[ImportedYear, ...]) -> ImportRecord:
    """The import record of a row and its years."""
    return ImportRecord(
        import_id=row.import_id, tenant=row.tenant, kind=ImportKind(row.kind),
        status=ImportStatus(row.status), requested_by=row.requested_by,
        started_at=row.started_at, finished_at=row.finished_at,
        error_reason=row.error_reason, error_message=row.error_message, years=years,
        balance_date=row.balance_date,
    )


class PreviousYear(NamedTuple):
    """The year of the tenant's last successful SIE import that a new import is compared with
    (``adapters.sql.statements.PREVIOUS_YEAR``)."""

    import_id: str
    sha256: str

    def unchanged(self, *, counted: bool = True) -> VoucherChanges:
        """No change counted: the same bytes, or (``counted=False``) nothing to count against."""
        return VoucherChanges(self.import_id, self.sha256, 0, 0, 0, counted=counted)

    def changes(self, old: Iterable[DigestRow], new: Iterable[DigestRow]) -> VoucherChanges:
        """The changes from this year's fingerprints (``old``) to a new import's."""
        found = compare(map(digest_batch, old), map(digest_batch, new))
        if not found.kept and not found.kept_others:
            return self.unchanged(counted=False)
        return VoucherChanges(
            previous_import_id=self.import_id, previous_sha256=self.sha256,
            added=found.vouchers.added, changed=found.vouchers.changed,
            removed=found.kept - found.vouchers.matched, other_changed=bool(found.others.changed),
        )


class DigestRow(NamedTuple):
    """A row of ``voucher_digest_batches`` (``adapters.sql.statements.DIGESTS_OF_YEAR``)."""

    first_index: int
    voucher_keys: str
    digests: bytes


def digest_batch(row: DigestRow) -> DigestBatch:
    """The batch a row holds."""
    return DigestBatch(row.first_index, row.voucher_keys, bytes(row.digests))


class ConnectionRow(NamedTuple):
    """A row of ``connections`` with the time of the tenant's last voucher sent to Fortnox."""

    tenant: str
    state: str
    state_reason: str
    fortnox_tenant_id: str
    company_name: str
    organisation_number: str
    scopes: str
    access_token: bytes | None
    refresh_token: bytes | None
    token_generation: int
    access_token_expires_at: datetime | None
    refresh_token_expires_at: datetime | None
    last_refreshed_at: datetime | None
    connected_at: datetime | None
    last_sie_import_at: datetime | None
    last_ledger_import_at: datetime | None
    account_type: str
    state_changed_at: datetime | None
    last_export_at: datetime | None


#: A ``ConnectionRow`` query, to be completed by a ``WHERE`` clause on ``c``.
SELECT_CONNECTION: LiteralString = (
    "SELECT c.tenant, c.state, c.state_reason, c.fortnox_tenant_id, c.company_name,"
    " c.organisation_number, c.scopes, c.access_token, c.refresh_token, c.token_generation,"
    " c.access_token_expires_at, c.refresh_token_expires_at, c.last_refreshed_at,"
    " c.connected_at, c.last_sie_import_at, c.last_ledger_import_at, c.account_type,"
    " c.state_changed_at, (SELECT MAX(v.exported_at) FROM voucher_exports v"
    " WHERE v.tenant = c.tenant) AS last_export_at FROM connections c")


def connection_of(row: ConnectionRow) -> Connection:
    """The connection a row describes (its tokens stay in the row)."""
    return Connection(
        tenant=row.tenant,
        state=ConnectionState(row.state),
        reason=row.state_reason,
        scopes=tuple(row.scopes.split()),
        fortnox_tenant_id=row.fortnox_tenant_id,
        company_name=row.company_name,
        organisation_number=row.organisation_number,
        connected_at=row.connected_at,
        access_token_expires_at=row.access_token_expires_at,
        refresh_token_expires_at=row.refresh_token_expires_at,
        last_refreshed_at=row.last_refreshed_at,
        last_sie_import_at=row.last_sie_import_at,
        last_ledger_import_at=row.last_ledger_import_at,
        account_type=AccountType(row.account_type),
        state_changed_at=row.state_changed_at,
        last_export_at=row.last_export_at,
    )


def usable_tokens(cipher: TokenCipher, tenant: str, row: ConnectionRow | None) -> CurrentTokens:
    """The tenant's usable tokens, decrypted; raises if it is not (or no longer) connected."""
    require_usable(None if row is None else row.state, "" if row is None else row.state_reason)
    assert row is not None
    # A usable connection has an access token, its expiry and the time it was issued.
    assert row.access_token is not None and row.access_token_expires_at is not None
    assert row.last_refreshed_at is not None
    return CurrentTokens(
        tenant=tenant,
        generation=int(row.token_generation),
        access_token=cipher.decrypt(bytes(row.access_token), tenant, "access_token"),
        refresh_token=stored_refresh_token(cipher, tenant, row),
        access_expires_at=row.access_token_expires_at,
        refresh_expires_at=row.refresh_token_expires_at,
        last_refreshed_at=row.last_refreshed_at,
        account_type=AccountType(row.account_type),
        fortnox_tenant_id=row.fortnox_tenant_id,
    )


def stored_refresh_token(cipher: TokenCipher, tenant: str, row: ConnectionRow | None) -> str | None:
    """The connection's refresh token, decrypted, whatever its state; ``None`` if it has none."""
    if row is None or row.refresh_token is None:
        return None
    return cipher.decrypt(bytes(row.refresh_token), tenant, "refresh_token")


def encrypted_refresh_token(cipher: TokenCipher, grant: TokenGrant, tenant: str) -> bytes | None:
    """A grant's refresh token as it is stored (a service account's grant has none)."""
    if grant.refresh_token is None:
        return None
    return cipher.encrypt(grant.refresh_token, tenant, "refresh_token")


def token_digest(token: str | None) -> str:
    """What ``refresh_tokens`` keeps of a generation's token: its SHA-256, ``""`` for none."""
    return "" if token is None else hashlib.sha256(token.encode()).hexdigest()


class RefreshTokenRow(NamedTuple):
    """When a generation's refresh token was spent (claimed), if it was, by which claim, and
    until when that claim's lease runs (by the database's clock)."""

    used_at: datetime | None
    claim_owner: str
    lease_expires_at: datetime | None

    def busy(self, now: datetime) -> bool:
        """Whether another claim on the token is alive at the database's ``now``."""
        return (self.used_at is not None and self.lease_expires_at is not None
                and self.lease_expires_at > now)


class OAuthStateRow(NamedTuple):
    """A row of ``oauth_states``."""

    state: str
    tenant: str
    redirect_uri: str
    scopes: str
    expected_organisation_number: str
    created_at: datetime
    expires_at: datetime
    account_type: str
    used_at: datetime | None
    outcome: str


OAUTH_STATE_COLUMNS = _columns(OAuthStateRow)


def oauth_state_record(row: OAuthStateRow) -> OAuthStateRecord:
    """The pending authorization a row describes."""
    return OAuthStateRecord(
        state=row.state, tenant=row.tenant, redirect_uri=row.redirect_uri,
        scopes=tuple(row.scopes.split()),
        expected_organisation_number=row.expected_organisation_number,
        created_at=row.created_at, expires_at=row.expires_at,
        account_type=AccountType(row.account_type),
    )
