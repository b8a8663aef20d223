"""The schema, as an ordered set of migrations; never edit one that has shipped, add a new one.

Times are ISO 8601 UTC strings, dates ISO strings, money integer öre. Tokens are stored only
encrypted (AES-GCM, see ``adapters.sql.crypto``).
"""

from __future__ import annotations

import re
from itertools import groupby

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("fortnox-bridge")


@MIGRATIONS()
def m001_initial(db: Database) -> None:
    """Connections with their tokens, OAuth states, import history and voucher exports."""
    db.execute(
        """
        CREATE TABLE connections (
            tenant TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            state_reason TEXT NOT NULL DEFAULT '',
            fortnox_tenant_id TEXT NOT NULL DEFAULT '',
            company_name TEXT NOT NULL DEFAULT '',
            organisation_number TEXT NOT NULL DEFAULT '',
            scopes TEXT NOT NULL DEFAULT '',
            access_token BLOB,
            refresh_token BLOB,
            token_generation INTEGER NOT NULL DEFAULT 0,
            access_token_expires_at TEXT,
            refresh_token_expires_at TEXT,
            last_refreshed_at TEXT,
            connected_at TEXT,
            updated_at TEXT NOT NULL,
            last_sie_import_at TEXT,
            last_ledger_import_at TEXT
        )
        """
    )
    # One row per refresh token ever issued: the rotation log. A refresh marks its token used
    # in the same transaction that stores the new pair.
    db.execute(
        """
        CREATE TABLE refresh_tokens (
            tenant TEXT NOT NULL,
            generation INTEGER NOT NULL,
            token_sha256 TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            used_at TEXT,
            PRIMARY KEY (tenant, generation)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE oauth_states (
            state TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            redirect_uri TEXT NOT NULL,
            scopes TEXT NOT NULL,
            expected_organisation_number TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE imports (
            import_id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            requested_by TEXT NOT NULL DEFAULT '',
            started_at TEXT NOT NULL,
            finished_at TEXT,
            heartbeat_at TEXT NOT NULL,
            worker_id TEXT NOT NULL,
            error_reason TEXT NOT NULL DEFAULT '',
            error_message TEXT NOT NULL DEFAULT '',
            balance_date TEXT
        )
        """
    )
    db.execute("CREATE INDEX imports_by_tenant ON imports (tenant, started_at)")
    db.execute("CREATE INDEX imports_running ON imports (status) WHERE status = 'running'")
    db.execute(
        """
        CREATE TABLE import_years (
            import_id TEXT NOT NULL REFERENCES imports (import_id),
            position INTEGER NOT NULL,
            financial_year_id INTEGER NOT NULL DEFAULT 0,
            start_date TEXT,
            end_date TEXT,
            sha256 TEXT NOT NULL DEFAULT '',
            byte_size INTEGER NOT NULL DEFAULT 0,
            voucher_count INTEGER NOT NULL DEFAULT 0,
            error_count INTEGER NOT NULL DEFAULT 0,
            warning_count INTEGER NOT NULL DEFAULT 0,
            ledger TEXT NOT NULL DEFAULT '',
            open_item_count INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (import_id, position)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE export_requests (
            tenant TEXT NOT NULL,
            request_id TEXT NOT NULL,
            payload_sha256 TEXT NOT NULL,
            requested_by TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            finished_at TEXT,
            PRIMARY KEY (tenant, request_id)
        )
        """
    )
    # One row per (tenant, external id), ever: the idempotency record of a voucher export.
    # status: pending (about to POST), unknown (POST sent, no answer), created, rejected.
    db.execute(
        """
        CREATE TABLE voucher_exports (
            tenant TEXT NOT NULL,
            external_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            payload_sha256 TEXT NOT NULL,
            marker TEXT NOT NULL,
            status TEXT NOT NULL,
            voucher_series TEXT NOT NULL DEFAULT '',
            voucher_number INTEGER NOT NULL DEFAULT 0,
            financial_year_id INTEGER NOT NULL DEFAULT 0,
            reason TEXT NOT NULL DEFAULT '',
            message TEXT NOT NULL DEFAULT '',
            fortnox_code TEXT NOT NULL DEFAULT '',
            fortnox_message TEXT NOT NULL DEFAULT '',
            requested_by TEXT NOT NULL DEFAULT '',
            attempted_at TEXT NOT NULL,
            exported_at TEXT,
            PRIMARY KEY (tenant, external_id)
        )
        """
    )
    db.execute("CREATE INDEX voucher_exports_by_request ON voucher_exports (tenant, request_id)")


@MIGRATIONS()
def m002_voucher_digests(db: Database) -> None:
    """A fingerprint per voucher per import: a year's import is compared with the last
    successful one of the same year, then older fingerprints are dropped."""
    db.execute(
        """
        CREATE TABLE voucher_digests (
            import_id TEXT NOT NULL,
            financial_year_id INTEGER NOT NULL,
            voucher_key TEXT NOT NULL,
            digest TEXT NOT NULL,
            PRIMARY KEY (import_id, financial_year_id, voucher_key)
        ) WITHOUT ROWID
        """
    )


@MIGRATIONS()
def m003_voucher_export_worker(db: Database) -> None:
    """The worker that wrote a voucher's intent: another worker's fresh intent is in flight."""
    db.execute("ALTER TABLE voucher_exports ADD COLUMN worker_id TEXT NOT NULL DEFAULT ''")
    db.execute(
        "CREATE INDEX voucher_exports_by_time ON voucher_exports (tenant, attempted_at)"
    )


@MIGRATIONS()
def m004_voucher_fingerprints_of_text(db: Database) -> None:
    """Voucher fingerprints are now taken of the voucher's text, not of its parsed fields:
    the old ones cannot be compared with the new, so they go (the next import of each year
    reports its changes as not known, and keeps fingerprints of the new kind)."""
    db.execute("DELETE FROM voucher_digests")


@MIGRATIONS()
def m005_voucher_export_lease(db: Database) -> None:
    """A claim on a voucher holds until its lease expires (``worker_id`` is its owner): a
    claim taken in the database, not in one process, keeps other processes from posting."""
    db.execute("ALTER TABLE voucher_exports ADD COLUMN lease_expires_at TEXT")


@MIGRATIONS()
def m006_rate_window_and_job_leases(db: Database) -> None:
    """What the processes sharing the file coordinate through it: the rate-limit window (a
    slot per request sent to a company, dated by its answer) and the background jobs' leases.
    Times here are epoch seconds (REAL): the window compares them arithmetically."""
    db.execute(
        """
        CREATE TABLE rate_limit_slots (
            slot_id INTEGER PRIMARY KEY AUTOINCREMENT,
            company_key TEXT NOT NULL,
            sent_at REAL NOT NULL,
            done_at REAL
        )
        """
    )
    db.execute(
        "CREATE INDEX rate_limit_slots_by_company ON rate_limit_slots (company_key, done_at)"
    )
    db.execute(
        """
        CREATE TABLE job_leases (
            job TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at REAL NOT NULL,
            last_run_at REAL
        )
        """
    )


@MIGRATIONS()
def m007_connection_kinds(db: Database) -> None:
    """Service-account connections (no refresh token), when a state last changed, and what
    became of each OAuth state's completion."""
    db.execute("ALTER TABLE connections ADD COLUMN account_type TEXT NOT NULL DEFAULT 'user'")
    db.execute("ALTER TABLE connections ADD COLUMN state_changed_at TEXT")
    db.execute("UPDATE connections SET state_changed_at = updated_at")
    db.execute("CREATE INDEX connections_by_renewal"
               " ON connections (account_type, state, last_refreshed_at)")
    db.execute("ALTER TABLE oauth_states ADD COLUMN account_type TEXT NOT NULL DEFAULT 'user'")
    # '' while the completion runs (or never ran), 'connected', or why it made no connection.
    db.execute("ALTER TABLE oauth_states ADD COLUMN outcome TEXT NOT NULL DEFAULT ''")


@MIGRATIONS()
def m008_voucher_export_fence(db: Database) -> None:
    """A claim's fencing token (the generation every claim raises) and where the unsettled
    attempts may have booked the voucher (``series:year`` each)."""
    db.execute("ALTER TABLE voucher_exports ADD COLUMN generation INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE voucher_exports ADD COLUMN places TEXT NOT NULL DEFAULT ''")


@MIGRATIONS()
def m009_token_claim_fence(db: Database) -> None:
    """A refresh claim's fencing token (a take-over replaces it) and its lease's end by the
    database's clock; a claim taken before this has none, and may be taken over."""
    db.execute("ALTER TABLE refresh_tokens ADD COLUMN claim_owner TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE refresh_tokens ADD COLUMN lease_expires_at TEXT")


@MIGRATIONS()
def m010_change_feed(db: Database) -> None:
    """Fortnox's change feed: the holder lease (``expires_at`` in epoch seconds by SQLite's own
    clock; ``generation`` fences a holder's writes), each topic's last stored offset, the
    watched tenants, the book changes (``seq`` is the callers' cursor; a topic's offset is
    stored once per tenant) and how far the sweep has deleted them."""
    db.execute(
        """
        CREATE TABLE feed_holder (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            generation INTEGER NOT NULL,
            expires_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE feed_offsets (
            topic TEXT PRIMARY KEY,
            last_offset TEXT NOT NULL,
            generation INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE feed_watches (
            tenant TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            expires_at TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            feed_tenant_id INTEGER NOT NULL DEFAULT 0,
            token_expires_at TEXT,
            added_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX feed_watches_by_feed_tenant ON feed_watches (feed_tenant_id)"
               " WHERE state = 'watching'")
    db.execute(
        """
        CREATE TABLE book_changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant TEXT NOT NULL,
            topic TEXT NOT NULL,
            event_offset TEXT NOT NULL,
            event_type TEXT NOT NULL,
            kind TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            fortnox_tenant_id INTEGER NOT NULL,
            financial_year_id INTEGER NOT NULL DEFAULT 0,
            voucher_series TEXT NOT NULL DEFAULT '',
            voucher_number INTEGER NOT NULL DEFAULT 0,
            occurred_at TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            UNIQUE (tenant, topic, event_offset)
        )
        """
    )
    db.execute("CREATE INDEX book_changes_by_tenant ON book_changes (tenant, seq)")
    db.execute("CREATE INDEX book_changes_by_time ON book_changes (recorded_at)")
    db.execute(
        """
        CREATE TABLE book_change_sweeps (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            swept_through INTEGER NOT NULL
        )
        """
    )


@MIGRATIONS()
def m011_voucher_digest_batches(db: Database) -> None:
    """Voucher digests in batches: a row holds many vouchers' keys (one text, joined by line
    ends) and digests (16 bytes each, end to end, in the same order), where a row per voucher
    repeated the import's id and the year. Each kept year's digests move into one batch (the
    hex digests become their 16 bytes, so the next import compares with them as before); a
    year holding a digest of another shape is not moved (its next import's changes are
    reported as not known)."""
    db.execute(
        """
        CREATE TABLE voucher_digest_batches (
            import_id TEXT NOT NULL,
            financial_year_id INTEGER NOT NULL,
            first_index INTEGER NOT NULL,
            voucher_keys TEXT NOT NULL,
            digests BLOB NOT NULL,
            PRIMARY KEY (import_id, financial_year_id, first_index)
        )
        """
    )
    rows = db.execute(
        "SELECT import_id, financial_year_id, voucher_key, digest FROM voucher_digests"
        " ORDER BY import_id, financial_year_id, voucher_key"
    )
    for (import_id, year), group in groupby(rows, key=lambda row: (row[0], row[1])):
        keys, digests = [], []
        for _, _, key, digest in group:
            if "\n" in key or not re.fullmatch("[0-9a-f]{32}", digest):
                break
            keys.append(key)
            digests.append(bytes.fromhex(digest))
        else:
            db.execute(
                "INSERT INTO voucher_digest_batches (import_id, financial_year_id,"
                " first_index, voucher_keys, digests) VALUES (?, ?, 0, ?, ?)",
                [import_id, year, "\n".join(keys), b"".join(digests)],
            )
    db.execute("DROP TABLE voucher_digests")
