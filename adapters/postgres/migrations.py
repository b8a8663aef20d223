"""The PostgreSQL schema as ordered migrations; never edit one that has shipped, add one.

The tables are those of ``adapters.sqlite.migrations`` in PostgreSQL's types: times are
``timestamptz``, dates ``date``, money ``bigint`` öre, tokens ``bytea`` encrypted as in SQLite
(``adapters.sql.crypto``). Replicas starting at once apply each migration once: the whole
run holds a transaction-scoped advisory lock.
"""

from __future__ import annotations

from typing import Any, LiteralString

from psycopg import AsyncConnection

#: The advisory lock key of schema changes (any constant no other lock of ours uses).
_MIGRATION_LOCK = 0x466F_7274  # "Fort"

_M001_INITIAL = """
CREATE TABLE connections (
    tenant text PRIMARY KEY,
    state text NOT NULL,
    state_reason text NOT NULL DEFAULT '',
    fortnox_tenant_id text NOT NULL DEFAULT '',
    company_name text NOT NULL DEFAULT '',
    organisation_number text NOT NULL DEFAULT '',
    scopes text NOT NULL DEFAULT '',
    access_token bytea,
    refresh_token bytea,
    token_generation bigint NOT NULL DEFAULT 0,
    access_token_expires_at timestamptz,
    refresh_token_expires_at timestamptz,
    last_refreshed_at timestamptz,
    connected_at timestamptz,
    updated_at timestamptz NOT NULL,
    last_sie_import_at timestamptz,
    last_ledger_import_at timestamptz
);
CREATE TABLE refresh_tokens (
    tenant text NOT NULL,
    generation bigint NOT NULL,
    token_sha256 text NOT NULL,
    issued_at timestamptz NOT NULL,
    used_at timestamptz,
    PRIMARY KEY (tenant, generation)
);
CREATE TABLE oauth_states (
    state text PRIMARY KEY,
    tenant text NOT NULL,
    redirect_uri text NOT NULL,
    scopes text NOT NULL,
    expected_organisation_number text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX oauth_states_by_expiry ON oauth_states (expires_at);
CREATE TABLE imports (
    import_id text PRIMARY KEY,
    tenant text NOT NULL,
    kind text NOT NULL,
    status text NOT NULL,
    requested_by text NOT NULL DEFAULT '',
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    heartbeat_at timestamptz NOT NULL,
    worker_id text NOT NULL,
    error_reason text NOT NULL DEFAULT '',
    error_message text NOT NULL DEFAULT '',
    balance_date date
);
CREATE INDEX imports_by_tenant ON imports (tenant, started_at);
CREATE INDEX imports_running ON imports (status) WHERE status = 'running';
CREATE TABLE import_years (
    import_id text NOT NULL REFERENCES imports (import_id),
    position integer NOT NULL,
    financial_year_id bigint NOT NULL DEFAULT 0,
    start_date date,
    end_date date,
    sha256 text NOT NULL DEFAULT '',
    byte_size bigint NOT NULL DEFAULT 0,
    voucher_count bigint NOT NULL DEFAULT 0,
    error_count bigint NOT NULL DEFAULT 0,
    warning_count bigint NOT NULL DEFAULT 0,
    ledger text NOT NULL DEFAULT '',
    open_item_count bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (import_id, position)
);
CREATE TABLE voucher_digests (
    import_id text NOT NULL,
    financial_year_id bigint NOT NULL,
    voucher_key text NOT NULL,
    digest text NOT NULL,
    PRIMARY KEY (import_id, financial_year_id, voucher_key)
);
CREATE TABLE export_requests (
    tenant text NOT NULL,
    request_id text NOT NULL,
    payload_sha256 text NOT NULL,
    requested_by text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    finished_at timestamptz,
    PRIMARY KEY (tenant, request_id)
);
CREATE TABLE voucher_exports (
    tenant text NOT NULL,
    external_id text NOT NULL,
    request_id text NOT NULL,
    payload_sha256 text NOT NULL,
    marker text NOT NULL,
    status text NOT NULL,
    voucher_series text NOT NULL DEFAULT '',
    voucher_number bigint NOT NULL DEFAULT 0,
    financial_year_id bigint NOT NULL DEFAULT 0,
    reason text NOT NULL DEFAULT '',
    message text NOT NULL DEFAULT '',
    fortnox_code text NOT NULL DEFAULT '',
    fortnox_message text NOT NULL DEFAULT '',
    requested_by text NOT NULL DEFAULT '',
    attempted_at timestamptz NOT NULL,
    exported_at timestamptz,
    worker_id text NOT NULL DEFAULT '',
    lease_expires_at timestamptz,
    PRIMARY KEY (tenant, external_id)
);
CREATE INDEX voucher_exports_by_request ON voucher_exports (tenant, request_id);
CREATE INDEX voucher_exports_by_time ON voucher_exports (tenant, attempted_at);
"""

# The rate-limit window every replica shares: one row per request admitted to a Fortnox
# company, dated by its answer (done_at) or still in flight (done_at NULL).
_M002_RATE_WINDOW = """
CREATE TABLE rate_limit_slots (
    slot_id bigserial PRIMARY KEY,
    company_key text NOT NULL,
    sent_at timestamptz NOT NULL,
    done_at timestamptz
);
CREATE INDEX rate_limit_slots_by_company ON rate_limit_slots (company_key, done_at);
-- One round trip per claim: under the company's advisory lock, drop the slots that left the
-- window (or whose answer never came), and take one if fewer than the limit remain. The
-- database's clock dates every slot, so replicas' clocks need not agree.
CREATE FUNCTION claim_rate_slot(
    p_key text, p_limit integer, p_window_s float8, p_stale_s float8,
    OUT slot_id bigint, OUT now_s float8, OUT oldest_done_s float8
) LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz;
    used integer;
    oldest timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(1382118501, hashtext(p_key));
    now_ts := clock_timestamp();
    DELETE FROM rate_limit_slots AS s WHERE s.company_key = p_key AND (
        s.done_at <= now_ts - make_interval(secs => p_window_s)
        OR (s.done_at IS NULL AND s.sent_at <= now_ts - make_interval(secs => p_stale_s)));
    SELECT count(*), min(s.done_at) INTO used, oldest
        FROM rate_limit_slots AS s WHERE s.company_key = p_key;
    now_s := extract(epoch FROM now_ts);
    oldest_done_s := extract(epoch FROM oldest);
    IF used < p_limit THEN
        INSERT INTO rate_limit_slots (company_key, sent_at) VALUES (p_key, now_ts)
            RETURNING rate_limit_slots.slot_id INTO slot_id;
    END IF;
END $$;
"""

# Several slots of a company's window in one round trip: a replica claims for every caller of
# the company waiting in it at once (a burst of 25 is one call, not 25). claim_rate_slot stays
# for replicas of an older release during a rolling update; both take the same lock.
_M010_RATE_SLOT_BATCHES = """
CREATE FUNCTION claim_rate_slots(
    p_key text, p_wanted integer, p_limit integer, p_window_s float8, p_stale_s float8,
    OUT slot_ids bigint[], OUT now_s float8, OUT oldest_done_s float8
) LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz;
    used integer;
    oldest timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(1382118501, hashtext(p_key));
    now_ts := clock_timestamp();
    DELETE FROM rate_limit_slots AS s WHERE s.company_key = p_key AND (
        s.done_at <= now_ts - make_interval(secs => p_window_s)
        OR (s.done_at IS NULL AND s.sent_at <= now_ts - make_interval(secs => p_stale_s)));
    SELECT count(*), min(s.done_at) INTO used, oldest
        FROM rate_limit_slots AS s WHERE s.company_key = p_key;
    now_s := extract(epoch FROM now_ts);
    oldest_done_s := extract(epoch FROM oldest);
    WITH made AS (
        INSERT INTO rate_limit_slots (company_key, sent_at)
            SELECT p_key, now_ts FROM generate_series(1, LEAST(p_wanted, p_limit - used))
            RETURNING rate_limit_slots.slot_id
    ) SELECT coalesce(array_agg(made.slot_id ORDER BY made.slot_id), '{}') INTO slot_ids
        FROM made;
END $$;
"""

# Background jobs: the replica holding a job's lease is the one that runs it.
_M003_JOB_LEASES = """
CREATE TABLE job_leases (
    job text PRIMARY KEY,
    owner text NOT NULL,
    expires_at timestamptz NOT NULL,
    last_run_at timestamptz
);
"""

# Service-account connections (no refresh token), when a state last changed, and what became
# of each OAuth state's completion ('' while it runs or never ran, 'connected', or why not).
_M004_CONNECTION_KINDS = """
ALTER TABLE connections ADD COLUMN account_type text NOT NULL DEFAULT 'user';
ALTER TABLE connections ADD COLUMN state_changed_at timestamptz;
UPDATE connections SET state_changed_at = updated_at;
CREATE INDEX connections_by_renewal ON connections (account_type, state, last_refreshed_at);
ALTER TABLE oauth_states ADD COLUMN account_type text NOT NULL DEFAULT 'user';
ALTER TABLE oauth_states ADD COLUMN outcome text NOT NULL DEFAULT '';
"""

# A voucher claim's fencing token (the generation every claim raises) and where the unsettled
# attempts may have booked the voucher (``series:year`` each).
_M005_VOUCHER_EXPORT_FENCE = """
ALTER TABLE voucher_exports ADD COLUMN generation bigint NOT NULL DEFAULT 0;
ALTER TABLE voucher_exports ADD COLUMN places text NOT NULL DEFAULT '';
"""

#: A refresh claim's fencing token (a take-over replaces it) and its lease's end by the
#: database's clock (``adapters.sqlite.migrations.m009_token_claim_fence``).
_M006_TOKEN_CLAIM_FENCE: LiteralString = """
ALTER TABLE refresh_tokens ADD COLUMN claim_owner text NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN lease_expires_at timestamptz;
"""

# Fortnox's change feed: the holder lease, each topic's last stored offset, the watched tenants,
# the book changes (``seq`` is the callers' cursor) and how far the sweep has deleted them.
_M007_CHANGE_FEED = """
CREATE TABLE feed_holder (
    name text PRIMARY KEY,
    owner text NOT NULL,
    generation bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE TABLE feed_offsets (
    topic text PRIMARY KEY,
    last_offset text NOT NULL,
    generation bigint NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE feed_watches (
    tenant text PRIMARY KEY,
    state text NOT NULL,
    reason text NOT NULL DEFAULT '',
    expires_at timestamptz NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    feed_tenant_id bigint NOT NULL DEFAULT 0,
    token_expires_at timestamptz,
    added_at timestamptz
);
CREATE INDEX feed_watches_by_feed_tenant ON feed_watches (feed_tenant_id)
    WHERE state = 'watching';
CREATE TABLE book_changes (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant text NOT NULL,
    topic text NOT NULL,
    event_offset text NOT NULL,
    event_type text NOT NULL,
    kind text NOT NULL,
    entity_id text NOT NULL,
    fortnox_tenant_id bigint NOT NULL,
    financial_year_id bigint NOT NULL DEFAULT 0,
    voucher_series text NOT NULL DEFAULT '',
    voucher_number bigint NOT NULL DEFAULT 0,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    UNIQUE (tenant, topic, event_offset)
);
CREATE INDEX book_changes_by_tenant ON book_changes (tenant, seq);
CREATE INDEX book_changes_by_time ON book_changes (recorded_at);
CREATE TABLE book_change_sweeps (
    id integer PRIMARY KEY CHECK (id = 1),
    swept_through bigint NOT NULL
);
"""

# Voucher digests in batches: a row holds many vouchers' keys (one text, joined by line ends)
# and digests (16 bytes each, end to end, in the same order), where a row per voucher repeated
# the import's id and the year. Each kept year's digests move into one batch (the hex digests
# become their 16 bytes, so the next import compares with them as before); a year holding a
# digest of another shape is not moved (its next import's changes are reported as not known).
_M008_VOUCHER_DIGEST_BATCHES = """
CREATE TABLE voucher_digest_batches (
    import_id text NOT NULL,
    financial_year_id bigint NOT NULL,
    first_index bigint NOT NULL,
    voucher_keys text NOT NULL,
    digests bytea NOT NULL,
    PRIMARY KEY (import_id, financial_year_id, first_index)
);
INSERT INTO voucher_digest_batches (import_id, financial_year_id, first_index, voucher_keys,
                                    digests)
SELECT import_id, financial_year_id, 0,
       string_agg(voucher_key, E'\\n' ORDER BY voucher_key COLLATE "C"),
       string_agg(decode(CASE WHEN digest ~ '^[0-9a-f]{32}$' THEN digest END, 'hex'),
                  ''::bytea ORDER BY voucher_key COLLATE "C")
FROM voucher_digests
GROUP BY import_id, financial_year_id
HAVING bool_and(digest ~ '^[0-9a-f]{32}$' AND strpos(voucher_key, E'\\n') = 0);
DROP TABLE voucher_digests;
"""

MIGRATIONS: tuple[tuple[str, LiteralString], ...] = (
    ("001_initial", _M001_INITIAL),
    ("002_rate_window", _M002_RATE_WINDOW),
    ("003_job_leases", _M003_JOB_LEASES),
    ("004_connection_kinds", _M004_CONNECTION_KINDS),
    ("005_voucher_export_fence", _M005_VOUCHER_EXPORT_FENCE),
    ("006_token_claim_fence", _M006_TOKEN_CLAIM_FENCE),
    ("007_change_feed", _M007_CHANGE_FEED),
    ("008_voucher_digest_batches", _M008_VOUCHER_DIGEST_BATCHES),
    ("010_rate_slot_batches", _M010_RATE_SLOT_BATCHES),
)


async def migrate(conn: AsyncConnection[Any]) -> list[str]:
    """Applies the migrations ``conn``'s database lacks; returns their names."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute("SELECT name FROM schema_migrations")
        done = {row["name"] for row in await cursor.fetchall()}
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
            applied.append(name)
    return applied
