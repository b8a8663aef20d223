"""Metrics after real flows through gRPC against the sandbox: what is counted, and that every
attribute comes from a bounded allow-list with no tenant, id or secret in it."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from adapters import metrics as adapter_metrics
from adapters.metrics import CLAIM_KIND, ClaimKind
from adapters.sqlite.connections import SqliteTokenStore
from core import errors
from core.voucher_export.model import Outcome
from sandbox.testing import SandboxHandle
from server.app import SERVICE_FULL_NAME
from server.config import Settings
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import connect, log_in
from tests.harness.errors import error_info
from tests.harness.metrics import points, recording_metrics, serving_metered, total
from tests.harness.vouchers import request, voucher

TENANT = "metrics-tenant-5c1e9"
RPC = "rpc.server.duration"
HTTP = "http.client.request.duration"
REFRESHES = "fortnox_bridge.token.refreshes"


def _allowed(sandbox: SandboxHandle) -> dict[str, object]:
    """Per attribute key, the values it may take (a set, or a pattern for URL templates)."""
    reasons = set(re.findall(r'"([A-Z][A-Z_]+)"', Path(errors.__file__).read_text()))
    transport_errors = {name for name in dir(httpx) if name.endswith(("Error", "Timeout"))}
    methods = set(pb.DESCRIPTOR.services_by_name["FortnoxService"].methods_by_name)
    return {
        "rpc.system": {"grpc"},
        "rpc.service": {SERVICE_FULL_NAME, "grpc.health.v1.Health",
                        "grpc.reflection.v1alpha.ServerReflection"},
        "rpc.method": methods | {"Check", "Watch", "ServerReflectionInfo"},
        "rpc.grpc.status_code": set(range(17)),
        "error.type": reasons | {c.name for c in grpc.StatusCode}
        | {str(status) for status in range(400, 600)} | transport_errors,
        "http.request.method": {"GET", "POST"},
        "http.response.status_code": set(range(100, 600)),
        # Placeholders only: a digit would be an id or a number from a path.
        "url.template": re.compile(r"/3(/[a-z]+|/\{[a-z]+\})+"),
        "server.address": {httpx.URL(sandbox.api_url).host},
        "fortnox_bridge.export.outcome": {o.value for o in Outcome},
        "fortnox_bridge.export.target": {"fortnox_api", "sie_4i_file"},
        CLAIM_KIND: {k.value for k in ClaimKind},
    }


async def _current_tokens(settings: Settings) -> set[str]:
    store = SqliteTokenStore(settings.db_path, settings.token_key)
    try:
        tokens = await store.current_tokens(TENANT)
    finally:
        await store.aclose()
    return {tokens.access_token, tokens.refresh_token}


async def _import(stub: pb_grpc.FortnoxServiceStub) -> pb.ImportSieResponse:
    answers = [a async for a in stub.ImportSie(
        pb.ImportSieRequest(tenant=TENANT, omit_raw_chunks=True))]
    return answers[-1]


@pytest.fixture
async def metered(
    settings: Settings,
) -> AsyncIterator[tuple[pb_grpc.FortnoxServiceStub, InMemoryMetricReader]]:
    """A stub to the service, with the reader of the metrics it records."""
    with recording_metrics() as (meters, reader):
        async with (
            serving_metered(settings, meters) as (running, _),
            grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        ):
            yield pb_grpc.FortnoxServiceStub(channel), reader


async def test_a_whole_flow_is_counted_with_bounded_attributes_and_no_secret(
    metered: tuple[pb_grpc.FortnoxServiceStub, InMemoryMetricReader], sandbox: SandboxHandle,
    settings: Settings,
) -> None:
    client, reader = metered
    fortnox = sandbox.tenants[0]
    started = await client.Connect(pb.ConnectRequest(
        tenant=TENANT, redirect_uri=sandbox.redirect_uri,
        expected_organisation_number=fortnox.organisation_number))
    consent = log_in(started.authorization_url, company=fortnox.id)
    await client.CompleteConnect(pb.CompleteConnectRequest(state=consent["state"],
                                                           code=consent["code"]))
    secrets = {consent["code"], consent["state"], sandbox.client_secret,
               base64.b64encode(settings.token_key).decode(), *await _current_tokens(settings)}

    sandbox.add_fault("rate_limit", tenant=fortnox.id, count=2)  # two 429s, each retried
    summary = (await _import(client)).summary
    assert summary.total_vouchers > 0

    sandbox.advance_clock(2 * 3600)  # the access token expires: the export refreshes it
    exported = await client.ExportVouchers(
        request(TENANT, [voucher("m-1", date(2025, 12, 31), 125_000)]))
    assert [r.external_id for r in exported.results] == ["m-1"]
    secrets |= await _current_tokens(settings)

    with pytest.raises(grpc.aio.AioRpcError):
        await client.GetConnection(pb.GetConnectionRequest(tenant="nobody"))

    sandbox.invalidate_refresh_tokens(fortnox.id)
    sandbox.advance_clock(2 * 3600)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _import(client)
    assert error_info(caught.value).reason == "RECONNECT_REQUIRED"

    service = {"rpc.system": "grpc", "rpc.service": SERVICE_FULL_NAME}
    failed_import = service | {"rpc.method": "ImportSie", "rpc.grpc.status_code": 9,
                               "error.type": "RECONNECT_REQUIRED"}
    # A streamed call is recorded as the server closes it, which can be just after the caller
    # has its status: wait for that point (up to 5 s) instead of racing it.
    for _ in range(50):
        found = points(reader)
        if total(found, RPC, failed_import):
            break
        await asyncio.sleep(0.1)
    for method in ("Connect", "CompleteConnect", "ImportSie", "ExportVouchers"):
        assert total(found, RPC, service | {"rpc.method": method, "rpc.grpc.status_code": 0}) == 1
    assert total(found, RPC, service | {
        "rpc.method": "GetConnection", "rpc.grpc.status_code": 5,
        "error.type": "CONNECTION_NOT_FOUND"}) == 1
    assert total(found, RPC, failed_import) == 1

    assert total(found, HTTP, {"http.response.status_code": 429, "error.type": "429"}) == 2
    assert total(found, "fortnox_bridge.fortnox.retries", {"error.type": "429"}) == 2
    assert total(found, HTTP, {"http.response.status_code": 401}) >= 1
    assert total(found, HTTP, {"url.template": "/3/sie/{type}",
                               "http.response.status_code": 200}) >= 1
    assert total(found, HTTP, {"http.request.method": "POST", "url.template": "/3/vouchers",
                               "http.response.status_code": 201}) == 1

    refreshes = [p for p in found if p.metric == REFRESHES]
    assert sum(p.value for p in refreshes if not p.attributes) == 1
    assert total(found, REFRESHES, {"error.type": "RECONNECT_REQUIRED"}) == 1

    assert total(found, "fortnox_bridge.import.bytes") == summary.total_bytes
    assert total(found, "fortnox_bridge.import.vouchers") == summary.total_vouchers
    assert total(found, "fortnox_bridge.import.duration") == 1
    assert total(found, "fortnox_bridge.export.vouchers", {
        "fortnox_bridge.export.outcome": "created",
        "fortnox_bridge.export.target": "fortnox_api"}) == 1

    allowed = _allowed(sandbox)
    forbidden = {TENANT, str(fortnox.id), fortnox.name, fortnox.organisation_number, *secrets}
    for point in found:
        for key, value in point.attributes.items():
            assert key in allowed, (point.metric, key)
            values = allowed[key]
            if isinstance(values, re.Pattern):
                assert values.fullmatch(str(value)), (point.metric, key, value)
            else:
                assert value in values, (point.metric, key, value)  # type: ignore[operator]
            assert not any(s in str(value) for s in forbidden), (point.metric, key)


def test_claims_in_progress_and_lease_take_overs_are_counted_by_kind() -> None:
    with recording_metrics() as (_, reader):
        adapter_metrics.claim_taken(ClaimKind.VOUCHER_EXPORT)
        adapter_metrics.claim_taken(ClaimKind.VOUCHER_EXPORT)
        adapter_metrics.claim_released(ClaimKind.VOUCHER_EXPORT)
        adapter_metrics.claim_taken(ClaimKind.TOKEN_REFRESH)
        adapter_metrics.lease_taken_over(ClaimKind.TOKEN_REFRESH)
        found = points(reader)
    assert total(found, "fortnox_bridge.claims.active", {CLAIM_KIND: "voucher_export"}) == 1
    assert total(found, "fortnox_bridge.claims.active", {CLAIM_KIND: "token_refresh"}) == 1
    assert total(found, "fortnox_bridge.claims.lease_takeovers",
                 {CLAIM_KIND: "token_refresh"}) == 1
    assert total(found, "fortnox_bridge.claims.lease_takeovers",
                 {CLAIM_KIND: "voucher_export"}) == 0


def test_unbound_instruments_record_nothing_and_do_not_fail() -> None:
    with recording_metrics() as (_, reader):
        pass
    adapter_metrics.claim_taken(ClaimKind.VOUCHER_EXPORT)  # after the provider is unbound
    assert not any(p.metric == "fortnox_bridge.claims.active" for p in points(reader))


async def _recorded(reader: InMemoryMetricReader, attributes: dict[str, str | int]) -> float:
    """Waits a little for the server to finish recording a call the client gave up on."""
    for _ in range(100):
        count = total(points(reader), RPC, attributes)
        if count:
            return count
        await asyncio.sleep(0.05)
    return 0


@pytest.mark.parametrize(("deadline_s", "code"), [(None, 1), (1.0, 4)])
async def test_a_call_cancelled_or_out_of_time_is_recorded_with_its_code(
    metered: tuple[pb_grpc.FortnoxServiceStub, InMemoryMetricReader], sandbox: SandboxHandle,
    deadline_s: float | None, code: int,
) -> None:
    client, reader = metered
    await connect(client, TENANT, sandbox.tenants[0])
    sandbox.add_fault("slow_sie", chunk_bytes=1024, chunk_delay_ms=500, path="/3/sie/")
    call = client.ImportSie(pb.ImportSieRequest(tenant=TENANT, omit_raw_chunks=True),
                            timeout=deadline_s)
    await call.read()  # the first progress: the import is under way
    if deadline_s is None:
        call.cancel()
    else:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _read_to_the_end(call)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert await _recorded(reader, {"rpc.method": "ImportSie", "rpc.grpc.status_code": code}) == 1


async def _read_to_the_end(call: grpc.aio.UnaryStreamCall[Any, Any]) -> None:
    while await call.read() is not grpc.aio.EOF:
        pass
