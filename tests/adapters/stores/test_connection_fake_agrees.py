"""The in-memory connection store (``tests/harness/fakes/connections.py``) answers as each real
token store does: the same connection lifecycle (``core.connecting``) runs over both, with the
same scripted Fortnox login, and every answer and error is compared."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from core.connecting import Connecting
from core.connections import AccountType, Connection, ConnectionFilter
from core.errors import DomainError
from core.stores import Stores
from core.token_store import TokenStore
from tests.adapters.stores.conftest import ManualClock
from tests.harness.fakes.connections import Company, MemoryConnectionStore, ScriptedLogin

TENANT, REDIRECT, ORG = "acme", "http://localhost/cb", "556677-8899"
SERVICE = AccountType.SERVICE


def _shown(connection: Connection) -> tuple[object, ...]:
    """What a caller sees of a connection, but the times a store dates itself."""
    return (connection.tenant, connection.state, connection.reason, connection.scopes,
            connection.fortnox_tenant_id, connection.company_name,
            connection.organisation_number, connection.account_type,
            connection.connected_at, connection.access_token_expires_at,
            connection.refresh_token_expires_at is None)


async def _script(store: TokenStore, clock: ManualClock) -> tuple[list[object], list[str]]:
    """Connects, fails, moves and disconnects a tenant; every answer or error, in order, and
    what was revoked at Fortnox."""
    login = ScriptedLogin(companies={"c1": Company(), "c2": Company(),
                                     "other": Company("559999-9999", "fnx-2")})
    connecting = Connecting(store, login, default_scopes=("bookkeeping",),
                            allowed_redirect_uris=(REDIRECT,), clock=clock)
    seen: list[object] = []

    async def step(call: Callable[[], Awaitable[object]]) -> None:
        try:
            answer = await call()
        except DomainError as exc:
            seen.append((exc.reason, exc.metadata))
            return
        seen.append(_shown(answer) if isinstance(answer, Connection) else answer)

    async def complete(state: str, code: str, error: str = "") -> Connection:
        return await connecting.complete_connect(state, code, error=error,
                                                 error_description="administrator needed")

    async def start(expected: str = "", kind: AccountType = AccountType.USER) -> str:
        return (await connecting.begin_connect(TENANT, REDIRECT, (), expected, kind)).state

    first = await start(ORG)
    await step(lambda: complete(first, "c1"))
    await step(lambda: complete(first, "c1"))  # used
    failed = await start()
    await step(lambda: complete(failed, "bad"))
    await step(lambda: complete(failed, "c1"))  # spent by the failure
    refused = await start(kind=SERVICE)
    await step(lambda: complete(refused, "", "access_denied"))
    await step(lambda: complete(refused, "c2"))
    clock.advance(60)
    moved = await start(kind=SERVICE)
    await step(lambda: complete(moved, "c2"))
    wrong = await start(ORG)
    await step(lambda: complete(wrong, "other"))
    late = await start()
    clock.advance(601)
    await step(lambda: complete(late, "c1"))  # expired
    await step(lambda: complete("no-such-state", "c1"))
    await step(lambda: connecting.get_connection(TENANT))
    await step(lambda: connecting.disconnect(TENANT))
    await step(lambda: connecting.get_connection("nobody"))
    page = await connecting.list_connections(ConnectionFilter(), 10, None)
    seen.append([_shown(c) for c in page.connections])
    return seen, login.revoked


async def test_the_fake_connection_store_answers_the_lifecycle_as_the_store_does(
    stores: Stores, clock: ManualClock
) -> None:
    real = await _script(stores.tokens, clock)
    fake = await _script(cast(TokenStore, MemoryConnectionStore()), ManualClock())
    assert fake == real
    assert len(real[0]) == 14 and real[1]  # the script ran to its end and revoked something
