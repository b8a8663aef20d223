"""The sandbox's Topics WebSocket (``/topics-v1``) through a real WebSocket client over real
HTTP: the commands and their answers, the events the books' changes emit, replay, retention,
token expiry, and the feed faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from sandbox.testing import SandboxHandle
from tests.harness.sandbox import sandbox_process

WAIT = 30.0  # generous: the machine is shared


class Feed:
    """A feed client: commands answered in order, events kept apart."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closed: asyncio.Future[BaseException | None] = (
            asyncio.get_running_loop().create_future())
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                message = json.loads(frame)
                (self.answers if "response" in message else self.events).put_nowait(message)
            self.closed.set_result(None)
        except ConnectionClosed as exc:
            self.closed.set_result(exc)

    async def command(self, payload: dict[str, Any] | str) -> dict[str, Any]:
        await self.ws.send(payload if isinstance(payload, str) else json.dumps(payload))
        return await asyncio.wait_for(self.answers.get(), WAIT)

    async def event(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.events.get(), WAIT)

    async def take(self, count: int) -> list[dict[str, Any]]:
        return [await self.event() for _ in range(count)]

    async def nothing_more(self, sandbox: SandboxHandle) -> None:
        """No event is pending: a marker event of a watched tenant arrives next."""
        marker = emit(sandbox, sandbox.tenants[0].id, "vouchers", "voucher-marker-v1", "m")
        got = await self.event()
        assert got["offset"] == marker["offset"], got

    async def close(self) -> None:
        self._reader.cancel()
        await self.ws.close()


def ws_url(sandbox: SandboxHandle) -> str:
    return sandbox.base_url.replace("http://", "ws://") + "/topics-v1"


@asynccontextmanager
async def feed(sandbox: SandboxHandle) -> AsyncIterator[Feed]:
    async with connect(ws_url(sandbox), open_timeout=WAIT) as ws:
        client = Feed(ws)
        try:
            yield client
        finally:
            client._reader.cancel()


def bearer(sandbox: SandboxHandle, tenant_id: int) -> str:
    return "Bearer " + str(sandbox.tokens(tenant_id)["access_token"])


def control(sandbox: SandboxHandle, method: str, path: str, body: Any = None,
            params: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.request(method, f"{sandbox.base_url}/_sandbox{path}", json=body, params=params,
                         timeout=WAIT)


def call(api: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request to the sandbox's API (blocking: the sandbox runs on a thread of its own)."""
    return api.request(method, path, **kwargs)


def revoke(sandbox: SandboxHandle, refresh_token: str) -> None:
    httpx.post(f"{sandbox.auth_url}/revoke", auth=(sandbox.client_id, sandbox.client_secret),
               data={"token": refresh_token}).raise_for_status()


def emit(sandbox: SandboxHandle, tenant: int, topic: str, type_: str, entity: str,
         **extra: Any) -> dict[str, Any]:
    response = control(sandbox, "POST", "/topics/events",
                       {"tenant": tenant, "topic": topic, "type": type_, "entityId": entity,
                        **extra})
    assert response.status_code == 201, response.text
    return dict(response.json()["events"][0])


def voucher_body(day: str = "2026-03-10", amount: int = 125) -> dict[str, Any]:
    return {"Voucher": {"Description": "Kaffe", "VoucherSeries": "A", "TransactionDate": day,
                        "VoucherRows": [{"Account": 1930, "Credit": amount},
                                        {"Account": 6110, "Debit": amount}]}}


async def subscribed(sandbox: SandboxHandle, client: Feed, tenants: list[int],
                     topics: list[dict[str, Any]] | None = None) -> None:
    answer = await client.command({
        "command": "add-tenants-v1", "clientSecret": sandbox.client_secret,
        "accessTokens": [bearer(sandbox, t) for t in tenants]})
    assert answer["result"] == "ok", answer
    answer = await client.command({"command": "add-topics-v1",
                                   "topics": topics or [{"topic": "vouchers"}]})
    assert answer == {"response": "add-topics-v1", "result": "ok"}
    assert await client.command({"command": "subscribe-v1"}) == {
        "response": "subscribe-v1", "result": "ok"}


def connections(sandbox: SandboxHandle) -> list[dict[str, Any]]:
    return list(control(sandbox, "GET", "/topics/connections").json()["connections"])


async def until(check: Any, what: str) -> None:
    for _ in range(int(WAIT * 20)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# -- commands -------------------------------------------------------------------------------
async def test_tenants_are_added_listed_and_removed(sandbox: SandboxHandle) -> None:
    first, second = sandbox.tenants[0].id, sandbox.tenants[1].id
    one, two = bearer(sandbox, first), bearer(sandbox, second)
    async with feed(sandbox) as client:
        answer = await client.command({"command": "add-tenants-v1",
                                       "clientSecret": sandbox.client_secret,
                                       "accessTokens": [one, two], "includeChildTenants": False})
        assert answer == {"response": "add-tenants-v1", "result": "ok",
                          "tenantIds": {one: first, two: second}}
        listed = await client.command({"command": "list-tenants-v1"})
        assert listed == {"response": "list-tenants-v1", "result": "ok",
                          "tenantIds": sorted([first, second])}
        assert await client.command({"command": "remove-tenants-v1", "tenants": [first]}) == {
            "response": "remove-tenants-v1", "result": "ok"}
        assert (await client.command({"command": "list-tenants-v1"}))["tenantIds"] == [second]


async def test_unusable_tokens_come_back_as_invalid(sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[0].id
    good = bearer(sandbox, tenant)
    expiring = bearer(sandbox, sandbox.tenants[1].id)
    revoked = sandbox.tokens(sandbox.tenants[2].id)
    revoke(sandbox, revoked["refresh_token"])
    sandbox.advance_clock(1800)
    fresh = bearer(sandbox, tenant)
    sandbox.advance_clock(1801)  # the first two tokens are past their hour now
    presented = [good, fresh, expiring, "Bearer " + revoked["access_token"], "Bearer nonsense",
                 fresh.removeprefix("Bearer ")]
    async with feed(sandbox) as client:
        answer = await client.command({"command": "add-tenants-v1",
                                       "clientSecret": sandbox.client_secret,
                                       "accessTokens": presented})
        assert answer["result"] == "error"
        assert answer["tenantIds"] == {fresh: tenant}
        assert answer["invalidTokens"] == [good, expiring, presented[3], "Bearer nonsense",
                                           presented[5]]
        wrong = await client.command({"command": "add-tenants-v1", "clientSecret": "guess",
                                      "accessTokens": [fresh]})
        assert wrong["result"] == "error" and "clientSecret" in wrong["message"]


async def test_unknown_topics_and_offsets_are_refused(sandbox: SandboxHandle) -> None:
    async with feed(sandbox) as client:
        answer = await client.command({"command": "add-topics-v1", "topics": [
            {"topic": "vouchers"}, {"topic": "ledgers"}, {"topic": "invoices", "offset": 17},
            {"topic": "financial-years", "offset": "not-ours"}]})
        assert answer == {"response": "add-topics-v1", "result": "error",
                          "invalidTopics": ["ledgers", "invoices", "financial-years"]}
        bare = await client.command({"command": "add-topics-v1", "topics": ["customers"]})
        assert bare["invalidTopics"] == ["customers"]
        await until(lambda: connections(sandbox) and connections(sandbox)[-1]["topics"],
                    "the connection's topics")
        assert list(connections(sandbox)[-1]["topics"]) == ["vouchers"]


@pytest.mark.parametrize("frame", [
    "not json", "[1, 2]", '{"command": "delete-everything-v1"}', '{"no": "command"}',
    '{"command": "add-tenants-v1"}', '{"command": "add-topics-v1", "topics": "vouchers"}',
    '{"command": "remove-tenants-v1", "tenants": ["x"]}',
])
async def test_a_malformed_command_is_answered_as_an_error(sandbox: SandboxHandle,
                                                           frame: str) -> None:
    async with feed(sandbox) as client:
        answer = await client.command(frame)
        assert answer["result"] == "error" and answer["message"], answer
        assert (await client.command({"command": "list-tenants-v1"}))["result"] == "ok"


async def test_a_binary_frame_is_answered_as_an_error(sandbox: SandboxHandle) -> None:
    async with feed(sandbox) as client:
        await client.ws.send(b'{"command": "list-tenants-v1"}')
        answer = await asyncio.wait_for(client.answers.get(), WAIT)
        assert answer["result"] == "error"


# -- events -----------------------------------------------------------------------------------
async def test_a_voucher_created_through_the_api_is_an_event(
        sandbox: SandboxHandle, api: httpx.Client) -> None:
    tenant = sandbox.tenants[0].id
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [tenant])
        created = call(api, "POST", "vouchers", json=voucher_body(),
                       params={"financialyear": 3})
        assert created.status_code == 201, created.text
        voucher = created.json()["Voucher"]
        event = await client.event()
    assert list(event)[:6] == ["topic", "offset", "type", "tenantId", "entityId", "timestamp"]
    assert event["topic"] == "vouchers" and event["type"] == "voucher-created-v1"
    assert event["tenantId"] == tenant
    assert event["entityId"] == str(voucher["VoucherNumber"])
    assert (event["year"], event["series"], event["number"]) == (
        3, "A", voucher["VoucherNumber"])
    assert isinstance(event["offset"], str) and not event["offset"].isdigit()
    assert event["timestamp"][10] == "T" and event["timestamp"][-6] in "+-"


async def test_customer_booking_amending_and_deleting_are_events(
        sandbox: SandboxHandle, api: httpx.Client) -> None:
    tenant = sandbox.tenants[0].id
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [tenant])
        booked = control(sandbox, "POST", f"/tenants/{tenant}/vouchers", voucher_body())
        assert booked.status_code == 201, booked.text
        number = booked.json()["Voucher"]["VoucherNumber"]
        sandbox.amend_voucher(tenant, 3, "A", 4, description="Rättad text")
        deleted = control(sandbox, "DELETE", f"/tenants/{tenant}/vouchers/3/A/5")
        assert deleted.status_code == 204
        got = await client.take(3)
    assert [(e["type"], e["year"], e["series"], e["number"], e["entityId"]) for e in got] == [
        ("voucher-created-v1", 3, "A", number, str(number)),
        ("voucher-updated-v1", 3, "A", 4, "4"),
        ("voucher-deleted-v1", 3, "A", 5, "5"),
    ]
    assert [e["offset"] for e in got] == sorted(e["offset"] for e in got)
    assert call(api, "GET", "vouchers/A/5", params={"financialyear": 3}).status_code == 404
    assert number not in [v["VoucherNumber"] for v in sandbox.created_vouchers(tenant, 3)]


async def test_only_added_tenants_and_topics_reach_a_connection(sandbox: SandboxHandle) -> None:
    watched, other = sandbox.tenants[0].id, sandbox.tenants[1].id
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [watched])
        emit(sandbox, other, "vouchers", "voucher-created-v1", "1", year=3, series="A", number=1)
        emit(sandbox, watched, "invoices", "invoice-bookkeep-v1", "17")
        year = control(sandbox, "POST", f"/tenants/{watched}/financial-years")
        assert year.status_code == 201
        mine = emit(sandbox, watched, "vouchers", "voucher-created-v1", "2", year=3, series="A",
                    number=2)
        assert await client.event() == mine
        answer = await client.command({"command": "add-topics-v1", "topics": [
            {"topic": "financial-years"}, {"topic": "invoices"}]})
        assert answer["result"] == "ok"
        payment = emit(sandbox, watched, "invoices", "invoicepayment-bookkeep-v1", "3817")
        assert await client.event() == payment


async def test_a_removed_tenant_gets_no_more_events(sandbox: SandboxHandle) -> None:
    kept, removed = sandbox.tenants[0].id, sandbox.tenants[1].id
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [kept, removed])
        first = emit(sandbox, removed, "vouchers", "voucher-created-v1", "1")
        assert await client.event() == first
        await client.command({"command": "remove-tenants-v1", "tenants": [removed]})
        emit(sandbox, removed, "vouchers", "voucher-created-v1", "2")
        await client.nothing_more(sandbox)


async def test_a_topic_added_again_after_subscribing_restarts_from_its_offset(
        sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[0].id
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [tenant])
        sent = [emit(sandbox, tenant, "vouchers", "voucher-created-v1", str(n))
                for n in (1, 2, 3)]
        assert await client.take(3) == sent
        answer = await client.command({"command": "add-topics-v1", "topics": [
            {"topic": "vouchers", "offset": sent[0]["offset"]}]})
        assert answer["result"] == "ok"
        assert await client.take(2) == sent[1:]
        await client.nothing_more(sandbox)


async def test_replay_from_an_offset(sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[0].id
    sent = [emit(sandbox, tenant, "vouchers", "voucher-created-v1", str(n), year=3,
                 series="A", number=n) for n in range(1, 6)]
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [tenant],
                         [{"topic": "vouchers", "offset": sent[1]["offset"]}])
        assert await client.take(3) == sent[2:]
    async with feed(sandbox) as client:  # without an offset: only what happens from now on
        await subscribed(sandbox, client, [tenant])
        await client.nothing_more(sandbox)
    log = control(sandbox, "GET", "/topics/events",
                  params={"topic": "vouchers", "after": sent[2]["offset"]}).json()["events"]
    assert log[:2] == sent[3:]


async def test_an_offset_older_than_the_retention_starts_at_the_earliest_kept_event(
        sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[0].id
    old = [emit(sandbox, tenant, "vouchers", "voucher-created-v1", str(n)) for n in (1, 2)]
    sandbox.advance_clock(15 * 86_400)
    kept = emit(sandbox, tenant, "vouchers", "voucher-created-v1", "3")
    overview = control(sandbox, "GET", "/topics").json()
    assert overview["retention_seconds"] == 14 * 86_400
    assert overview["topics"]["vouchers"]["earliest"] == kept["offset"]
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [tenant],
                         [{"topic": "vouchers", "offset": old[0]["offset"]}])
        assert await client.event() == kept
        topic = connections(sandbox)[-1]["topics"]["vouchers"]
        assert topic["gap"] is True and topic["requested_offset"] == old[0]["offset"]


async def test_an_expired_token_stops_its_tenant_until_it_is_added_again(
        sandbox: SandboxHandle) -> None:
    early, late = sandbox.tenants[0].id, sandbox.tenants[1].id
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [early])
        sandbox.advance_clock(3000)
        answer = await client.command({"command": "add-tenants-v1",
                                       "clientSecret": sandbox.client_secret,
                                       "accessTokens": [bearer(sandbox, late)]})
        assert answer["result"] == "ok"
        sandbox.advance_clock(700)  # the first token is past its hour, the second is not
        emit(sandbox, early, "vouchers", "voucher-created-v1", "1")
        flowing = emit(sandbox, late, "vouchers", "voucher-created-v1", "2")
        assert await client.event() == flowing
        assert (await client.command({"command": "list-tenants-v1"}))["tenantIds"] == [late]
        assert connections(sandbox)[-1]["stopped_tenants"] == {str(early): "expired"}
        await client.command({"command": "add-tenants-v1", "clientSecret": sandbox.client_secret,
                              "accessTokens": [bearer(sandbox, early)]})
        again = emit(sandbox, early, "vouchers", "voucher-created-v1", "3")
        assert await client.event() == again


async def test_a_revoked_grant_stops_its_tenant(sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[0].id
    grant = sandbox.tokens(tenant)
    async with feed(sandbox) as client:
        answer = await client.command({
            "command": "add-tenants-v1", "clientSecret": sandbox.client_secret,
            "accessTokens": [f"Bearer {grant['access_token']}", bearer(sandbox, 1_000_002)]})
        assert answer["result"] == "ok"
        await client.command({"command": "add-topics-v1", "topics": [{"topic": "vouchers"}]})
        await client.command({"command": "subscribe-v1"})
        revoke(sandbox, grant["refresh_token"])
        emit(sandbox, tenant, "vouchers", "voucher-created-v1", "1")
        other = emit(sandbox, 1_000_002, "vouchers", "voucher-created-v1", "2")
        assert await client.event() == other
        assert connections(sandbox)[-1]["stopped_tenants"] == {str(tenant): "revoked"}


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/topics/events", {"tenant": [1], "topic": "vouchers", "type": "x"}),
    ("POST", "/topics/events", {"tenant": 1_000_001, "topic": "ledgers", "type": "x"}),
    ("POST", "/topics/events", {"tenant": 1_000_001, "topic": "vouchers"}),
    ("POST", "/topics/events", "not an object"),
    ("POST", "/topics/burst", {"count": 0}),
    ("POST", "/topics/burst", {"count": 5, "tenants": [["x"]]}),
    ("POST", "/topics/drop", {"connection": "all"}),
    ("POST", "/tenants", {"count": 100_000}),
    ("POST", "/tenants", ["count", 2]),
    ("POST", "/tenants", {"count": 2, "first_id": 0}),
    ("POST", "/tenants", {"count": 2, "first_id": "2000000"}),
    ("POST", "/tenants", {"count": 2, "first_id": True}),
    ("POST", "/tenants", {"count": 2, "first_id": 2**31 - 1}),
    ("POST", "/tenants/1000001/vouchers", ["not", "a", "voucher"]),
    ("GET", "/topics/events?after=17", None),
    ("GET", "/topics/events?tenant=x", None),
])
def test_bad_control_requests_are_refused_plainly(sandbox: SandboxHandle, method: str,
                                                 path: str, body: Any) -> None:
    response = control(sandbox, method, path, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]


async def test_many_events_across_tenants_all_arrive_in_order(sandbox: SandboxHandle) -> None:
    added = sandbox.add_companies(20)
    tenants = [t.id for t in added]
    assert len(set(tenants) | {t.id for t in sandbox.tenants}) == len(sandbox.tenants) == 23
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, tenants)
        made = control(sandbox, "POST", "/topics/burst", {"count": 1000, "tenants": tenants})
        assert made.status_code == 201, made.text
        got = await client.take(1000)
    log = control(sandbox, "GET", "/topics/events", params={"topic": "vouchers"}).json()
    assert got == log["events"]
    assert {e["tenantId"] for e in got} == set(tenants)
    assert [e["offset"] for e in got] == sorted(e["offset"] for e in got)
    assert len({e["offset"] for e in got}) == 1000


def test_companies_are_added_from_a_given_id_and_never_over_one_that_exists(
        sandbox: SandboxHandle) -> None:
    added = sandbox.add_companies(3, first_id=2_000_000)
    assert [t.id for t in added] == [2_000_000, 2_000_001, 2_000_002]
    assert {t.id for t in sandbox.tenants} >= {2_000_000, 2_000_001, 2_000_002}
    token = sandbox.tokens(2_000_001)["access_token"]
    company = httpx.get(f"{sandbox.api_url}/companyinformation",
                        headers={"Authorization": f"Bearer {token}"}).json()
    assert company["CompanyInformation"]["CompanyName"] == "Bolag 2000001 AB"
    for first in (2_000_002, 1_999_999, sandbox.tenants[0].id):
        clash = control(sandbox, "POST", "/tenants", {"count": 2, "first_id": first})
        assert clash.status_code == 409, clash.text
        assert "exists already" in clash.json()["error"]
    after = sandbox.add_companies(1)  # without an id: after the highest
    assert [t.id for t in after] == [2_000_003]
    sandbox.reset()
    assert not {t.id for t in sandbox.tenants} & {2_000_000, 2_000_001, 2_000_002, 2_000_003}


async def test_the_customer_adding_a_financial_year_is_an_event(sandbox: SandboxHandle,
                                                              api: httpx.Client) -> None:
    tenant = sandbox.tenants[0].id
    async with feed(sandbox) as client:
        await subscribed(sandbox, client, [tenant], [{"topic": "financial-years"}])
        made = control(sandbox, "POST", f"/tenants/{tenant}/financial-years")
        assert made.status_code == 201
        event = await client.event()
    assert made.json() == {"id": 4, "from": "2027-01-01", "to": "2027-12-31"}
    assert {k: event[k] for k in ("topic", "type", "tenantId", "entityId")} == {
        "topic": "financial-years", "type": "financial-year-created-v1", "tenantId": tenant,
        "entityId": "4"}
    listed = call(api, "GET", "financialyears").json()["FinancialYears"]
    assert [y["Id"] for y in listed][-1] == 4


def _process_token(url: str) -> str:
    """An access token of the first company of a sandbox process (consent + code exchange)."""
    consent = httpx.get(f"{url}/oauth-v1/auth", follow_redirects=False, params={
        "client_id": "sandbox-client", "redirect_uri": "http://localhost:8080/callback",
        "scope": "bookkeeping", "state": "s", "response_type": "code"})
    code = parse_qs(urlsplit(consent.headers["location"]).query)["code"][0]
    token = httpx.post(f"{url}/oauth-v1/token", auth=("sandbox-client", "sandbox-secret"),
                       data={"grant_type": "authorization_code", "code": code,
                             "redirect_uri": "http://localhost:8080/callback"})
    return str(token.json()["access_token"])


async def test_a_sandbox_process_serves_the_feed() -> None:
    with sandbox_process() as proc:
        token, tenant = _process_token(proc.url), proc.tenant_id
        async with connect(proc.url.replace("http://", "ws://") + "/topics-v1",
                           open_timeout=WAIT) as ws:
            client = Feed(ws)
            answer = await client.command({
                "command": "add-tenants-v1", "clientSecret": "sandbox-secret",
                "accessTokens": [f"Bearer {token}"]})
            assert answer["tenantIds"] == {f"Bearer {token}": tenant}
            await client.command({"command": "add-topics-v1", "topics": [{"topic": "vouchers"}]})
            await client.command({"command": "subscribe-v1"})
            proc.control("POST", f"/tenants/{tenant}/vouchers", voucher_body())
            event = await client.event()
            assert (event["type"], event["tenantId"]) == ("voucher-created-v1", tenant)
            assert proc.control("GET", "/topics/events")["events"] == [event]
