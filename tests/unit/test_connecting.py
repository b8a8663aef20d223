"""The connection lifecycle's own rules (``core.connecting``) over fakes of its ports: when a
state is spent, what a refused consent means, whether the login reached the expected company,
how a tenant moves between a user and a service account, and how it disconnects. The same use
case runs end to end in ``service/test_connect.py``, ``service/connections/`` and
``adapters/fortnox/test_oauth.py``."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

import pytest

from core.connecting import (
    DISCONNECTED_REASON,
    DISCONNECTED_SERVICE,
    DISCONNECTED_UNCONFIRMED,
    Connecting,
)
from core.connections import AccountType, ConnectionFilter, ConnectionState
from core.errors import (
    CodeExchangeRefused,
    ConnectionNotFound,
    ConsentRefused,
    FortnoxUnavailable,
    InvalidRequest,
    OAuthStateInvalid,
    WrongFortnoxCompany,
)
from core.token_store import TokenStore
from tests.harness.fakes.clock import ManualClock
from tests.harness.fakes.connections import Company, MemoryConnectionStore, ScriptedLogin

TENANT = "acme"
REDIRECT = "http://localhost:8080/callback"
ORG = "556677-8899"
SERVICE = AccountType.SERVICE


class World:
    """The use case over an in-memory store and a scripted Fortnox login."""

    def __init__(self, redirect_uris: tuple[str, ...] = (REDIRECT,)) -> None:
        self.clock = ManualClock()
        self.store = MemoryConnectionStore()
        self.login = ScriptedLogin(companies={"c1": Company(), "c2": Company(),
                                              "other": Company("559999-9999", "fnx-2")})
        self.connecting = Connecting(cast(TokenStore, self.store), self.login,
                                     default_scopes=("bookkeeping", "companyinformation"),
                                     allowed_redirect_uris=redirect_uris, clock=self.clock)

    async def start(self, expected: str = "", kind: AccountType = AccountType.USER) -> str:
        started = await self.connecting.begin_connect(TENANT, REDIRECT, (), expected, kind)
        return started.state

    async def connect(self, code: str = "c1", expected: str = "",
                      kind: AccountType = AccountType.USER) -> None:
        state = await self.start(expected, kind)
        await self.connecting.complete_connect(state, code)


@pytest.fixture
def world() -> World:
    return World()


async def test_a_login_starts_with_a_state_that_lives_as_long_as_fortnox_codes(
    world: World
) -> None:
    started = await world.connecting.begin_connect(
        TENANT, REDIRECT, ("archive", "archive", "connectfile"), " 556677-8899 ")
    stored = world.store.states[started.state].record
    assert (stored.tenant, stored.scopes, stored.expected_organisation_number) == (
        TENANT, ("archive", "connectfile"), ORG)
    assert started.expires_at == world.clock.now + world.login.state_lifetime
    assert f"state={started.state}" in started.url and "account_type" not in started.url
    default = await world.connecting.begin_connect(TENANT, REDIRECT, account_type=SERVICE)
    assert world.store.states[default.state].record.scopes == (
        "bookkeeping", "companyinformation")
    assert "account_type=service" in default.url


@pytest.mark.parametrize(("tenant", "redirect", "field"), [
    ("", REDIRECT, "tenant"), (TENANT, "https://evil.example/cb", "redirect_uri")])
async def test_a_login_is_not_started_for_no_tenant_or_a_foreign_redirect(
    world: World, tenant: str, redirect: str, field: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await world.connecting.begin_connect(tenant, redirect)
    assert [v.field for v in refused.value.violations] == [field]
    assert world.store.states == {}


async def test_any_redirect_is_allowed_when_none_is_configured() -> None:
    world = World(redirect_uris=())
    await world.connecting.begin_connect(TENANT, "https://anywhere.example/cb")


async def test_an_unknown_state_is_refused_before_fortnox_is_asked(world: World) -> None:
    with pytest.raises(OAuthStateInvalid) as refused:
        await world.connecting.complete_connect("no-such-state", "c1")
    assert refused.value.reason == "OAUTH_STATE_UNKNOWN"
    assert world.login.exchanged == []


async def test_an_expired_state_is_refused(world: World) -> None:
    state = await world.start()
    world.clock.advance(world.login.state_lifetime.total_seconds())
    with pytest.raises(OAuthStateInvalid) as refused:
        await world.connecting.complete_connect(state, "c1")
    assert refused.value.reason == "OAUTH_STATE_EXPIRED"
    assert world.login.exchanged == []


async def test_a_state_that_connected_is_used(world: World) -> None:
    state = await world.start()
    await world.connecting.complete_connect(state, "c1")
    with pytest.raises(OAuthStateInvalid) as refused:
        await world.connecting.complete_connect(state, "c1")
    assert refused.value.reason == "OAUTH_STATE_USED"
    assert world.login.exchanged == ["c1"]


async def test_a_state_whose_completion_failed_says_why_and_is_spent(world: World) -> None:
    state = await world.start()
    with pytest.raises(CodeExchangeRefused):
        await world.connecting.complete_connect(state, "not-a-code")
    with pytest.raises(OAuthStateInvalid) as refused:
        await world.connecting.complete_connect(state, "c1")  # a good code comes too late
    assert refused.value.reason == "OAUTH_CONNECT_NOT_COMPLETED"
    assert refused.value.metadata["earlier_outcome"] == "OAUTH_CODE_REJECTED"
    assert world.login.exchanged == ["not-a-code"] and world.store.connections == {}


async def test_a_refused_consent_spends_the_state_and_asks_fortnox_nothing(
    world: World
) -> None:
    state = await world.start()
    with pytest.raises(ConsentRefused) as refused:
        await world.connecting.complete_connect(
            state, "", error="access_denied", error_description="The user said no")
    assert refused.value.reason == "OAUTH_ACCESS_DENIED"
    assert refused.value.metadata == {"oauth_error": "access_denied"}
    assert world.store.states[state].outcome == "OAUTH_ACCESS_DENIED"
    assert world.login.exchanged == [] and world.store.connections == {}


@pytest.mark.parametrize(("kind", "reason"), [
    (SERVICE, "SERVICE_ACCOUNT_NOT_ADMIN"), (AccountType.USER, "OAUTH_ACCESS_DENIED")])
async def test_only_a_service_account_consent_is_refused_for_want_of_an_administrator(
    world: World, kind: AccountType, reason: str
) -> None:
    state = await world.start(kind=kind)
    with pytest.raises(ConsentRefused) as refused:
        await world.connecting.complete_connect(
            state, "", error="access_denied",
            error_description="Endast en systemadministratör kan godkänna")
    assert refused.value.reason == reason


async def test_a_service_account_whose_company_is_not_named_is_not_connected(
    world: World
) -> None:
    world.login.companies["anon"] = Company(fortnox_tenant_id="")
    with pytest.raises(CodeExchangeRefused) as refused:
        await world.connect("anon", kind=SERVICE)
    assert refused.value.reason == "SERVICE_ACCOUNT_TENANT_UNKNOWN"
    assert world.store.connections == {}
    assert world.login.revoked == []  # a service account's refresh token is never revoked


async def test_a_user_needs_no_company_id(world: World) -> None:
    world.login.companies["anon"] = Company(fortnox_tenant_id="")
    await world.connect("anon")
    assert world.store.connections[TENANT].state is ConnectionState.CONNECTED


async def test_a_login_into_another_company_is_revoked_and_changes_nothing(
    world: World
) -> None:
    await world.connect("c1", expected=ORG)
    before = world.store.connections[TENANT]
    with pytest.raises(WrongFortnoxCompany) as refused:
        await world.connect("other", expected=ORG)
    assert refused.value.metadata == {"expected_organisation_number": ORG,
                                      "organisation_number": "559999-9999"}
    assert world.login.revoked == ["refresh-other-1"]  # the fresh tokens, not the old ones
    assert world.store.connections[TENANT] == before
    assert world.store.refresh_tokens[TENANT] == "refresh-c1-0"


@pytest.mark.parametrize("written", ["5566778899", "16556677-8899", "165566778899"])
async def test_the_expected_company_however_its_number_is_written_connects(
    world: World, written: str
) -> None:
    await world.connect("c1", expected=written)
    assert world.store.connections[TENANT].organisation_number == ORG


async def test_a_failed_company_look_up_revokes_the_fresh_tokens_and_spends_the_state(
    world: World
) -> None:
    world.login.company_error = FortnoxUnavailable("Fortnox is down.")
    state = await world.start()
    with pytest.raises(FortnoxUnavailable):
        await world.connecting.complete_connect(state, "c1")
    assert world.login.revoked == ["refresh-c1-0"]
    assert world.store.states[state].outcome == "FORTNOX_UNAVAILABLE"
    assert world.store.connections == {}


async def test_a_reconnect_replaces_the_tokens_revokes_the_old_and_keeps_the_history(
    world: World
) -> None:
    await world.connect("c1")
    world.store.connections[TENANT] = replace(world.store.connections[TENANT],
                                              last_sie_import_at=world.clock.now)
    world.clock.advance(60)
    await world.connect("c2")
    connection = await world.connecting.get_connection(TENANT)
    assert world.login.revoked == ["refresh-c1-0"]
    assert world.store.refresh_tokens[TENANT] == "refresh-c2-1"
    assert connection.connected_at == world.clock.now
    assert connection.last_sie_import_at is not None
    assert world.login.forgotten == [TENANT, TENANT]


async def test_a_user_moves_to_a_service_account_keeping_no_refresh_token(
    world: World
) -> None:
    await world.connect("c1")
    await world.connect("c2", kind=SERVICE)
    connection = world.store.connections[TENANT]
    assert (connection.account_type, connection.refresh_token_expires_at) == (SERVICE, None)
    assert TENANT not in world.store.refresh_tokens
    assert world.login.revoked == ["refresh-c1-0"]  # the user's grant, never the service's


async def test_a_service_account_moves_back_to_a_user(world: World) -> None:
    await world.connect("c1", kind=SERVICE)
    await world.connect("c2")
    connection = world.store.connections[TENANT]
    assert connection.account_type is AccountType.USER
    assert world.store.refresh_tokens[TENANT] == "refresh-c2-1"
    assert world.login.revoked == []  # the service account had no refresh token to revoke


async def test_a_failed_move_leaves_the_earlier_kind(world: World) -> None:
    await world.connect("c1")
    state = await world.start(kind=SERVICE)
    with pytest.raises(ConsentRefused):
        await world.connecting.complete_connect(state, "", error="access_denied",
                                                error_description="administrator needed")
    assert world.store.connections[TENANT].account_type is AccountType.USER
    assert world.store.refresh_tokens[TENANT] == "refresh-c1-0"


@pytest.mark.parametrize(("confirmed", "reason"), [
    (True, DISCONNECTED_REASON), (False, DISCONNECTED_UNCONFIRMED)])
async def test_disconnecting_a_user_revokes_its_refresh_token(
    world: World, confirmed: bool, reason: str
) -> None:
    await world.connect("c1")
    world.login.revoke_answers = [confirmed]
    world.clock.advance(5)
    gone = await world.connecting.disconnect(TENANT)
    assert (gone.state, gone.reason, gone.state_changed_at) == (
        ConnectionState.REVOKED, reason, world.clock.now)
    assert world.login.revoked == ["refresh-c1-0"]
    assert TENANT not in world.store.refresh_tokens
    assert world.login.forgotten[-1] == TENANT


async def test_disconnecting_a_service_account_revokes_nothing_at_fortnox(
    world: World
) -> None:
    await world.connect("c1", kind=SERVICE)
    gone = await world.connecting.disconnect(TENANT)
    assert (gone.state, gone.reason) == (ConnectionState.REVOKED, DISCONNECTED_SERVICE)
    assert world.login.revoked == []


async def test_a_disconnected_user_is_disconnected_again_without_asking_fortnox(
    world: World
) -> None:
    await world.connect("c1")
    await world.connecting.disconnect(TENANT)
    again = await world.connecting.disconnect(TENANT)
    assert again.reason == DISCONNECTED_REASON
    assert world.login.revoked == ["refresh-c1-0"]


async def test_a_tenant_that_never_connected_has_no_connection(world: World) -> None:
    with pytest.raises(ConnectionNotFound):
        await world.connecting.get_connection(TENANT)
    with pytest.raises(ConnectionNotFound):
        await world.connecting.disconnect(TENANT)
    assert world.login.revoked == [] and world.login.forgotten == []


async def test_connections_are_listed_from_the_store(world: World) -> None:
    await world.connect("c1")
    page = await world.connecting.list_connections(
        ConnectionFilter(state=ConnectionState.CONNECTED), 10, None)
    assert [c.tenant for c in page.connections] == [TENANT] and page.next_after is None
    revoked = await world.connecting.list_connections(
        ConnectionFilter(state=ConnectionState.REVOKED), 10, None)
    assert revoked.connections == ()
