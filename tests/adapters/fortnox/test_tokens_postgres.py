"""The Fortnox adapter's token tests, run on the PostgreSQL token store (the same functions as
``tests.adapters.fortnox.test_tokens`` and ``test_oauth``, with ``store`` on PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest

from adapters.fortnox import FortnoxAdapter
from adapters.postgres.stores import PostgresStores
from core.errors import StoredTokenUnreadable
from core.token_store import TokenStore
from sandbox.testing import SandboxHandle
from tests.adapters.fortnox.conftest import TENANT, TOKEN_KEY
from tests.adapters.fortnox.test_oauth import (  # noqa: F401
    test_full_flow_connects_reads_and_disconnects,
    test_login_into_another_company_is_refused_and_revoked,
    test_refused_code_stores_nothing,
    test_state_expires_after_ten_minutes,
    test_state_is_single_use,
)
from tests.adapters.fortnox.test_tokens import (  # noqa: F401
    refresh_in_two_processes,
    test_a_lost_refresh_answer_is_settled_at_once_and_named,
    test_a_refresh_whose_answer_comes_on_the_second_asking_goes_on,
    test_a_worker_whose_claim_was_taken_over_sends_nothing_and_reads_the_winners,
    test_expiring_token_is_rotated_and_the_old_refresh_token_dies,
    test_fifty_concurrent_calls_refresh_once,
    test_invalid_grant_requires_reconnect_and_is_not_retried,
    test_refreshed_on_use_once_the_tokens_are_older_than_the_maximum_age,
    test_replicas_whose_clocks_are_off_by_two_minutes_ask_fortnox_once,
    test_token_rejected_by_fortnox_is_refreshed_and_the_call_repeated,
)
from tests.harness.connect import connect_adapter


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[TokenStore]:
    stores = await PostgresStores.open(postgres_url, TOKEN_KEY, pool_size=4)
    yield stores.tokens
    await stores.aclose()


async def test_tokens_are_encrypted_at_rest(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, store: TokenStore,
    postgres_url: str,
) -> None:
    await connect_adapter(adapter, TENANT)
    tokens = await store.current_tokens(TENANT)
    with psycopg.connect(postgres_url) as db:
        blobs = db.execute("SELECT access_token, refresh_token FROM connections").fetchone()
        dump = repr(db.execute("SELECT * FROM connections").fetchall()).encode()
    assert blobs is not None
    for secret in (tokens.access_token, tokens.refresh_token):
        assert secret.encode() not in dump
        assert all(secret.encode() not in bytes(blob) for blob in blobs)
    other = await PostgresStores.open(postgres_url, bytes(32))
    try:
        with pytest.raises(StoredTokenUnreadable, match="cannot be decrypted"):
            await other.tokens.current_tokens(TENANT)
    finally:
        await other.aclose()


def test_two_processes_sharing_the_database_refresh_once(
    sandbox: SandboxHandle, postgres_url: str
) -> None:
    refresh_in_two_processes(sandbox, postgres_url)
