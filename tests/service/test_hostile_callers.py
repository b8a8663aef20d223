"""A hostile caller against the whole service, through a real gRPC channel and a Python client:
every bad input is answered with its code and an ``ErrorInfo`` the client can read, and
nothing a caller sends is taken in without a bound."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from google.type import date_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.trace import TracerProvider

from sandbox.testing import SandboxHandle, running_sandbox
from server.bounds import MAX_REQUEST_BYTES
from server.config import load_settings
from server.errors import MAX_STATUS_BYTES, MAX_VIOLATIONS
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import import_history_pb2 as history_pb
from spiris.skattbokslut.fortnox.v1 import ledgers_pb2 as l_pb
from spiris.skattbokslut.fortnox.v1 import sie_import_pb2 as sie_pb
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb
from tests.harness import bridge
from tests.harness.connect import connect
from tests.harness.errors import error_info
from tests.harness.service import RATE_LIMIT, RATE_WINDOW_S, service_env, serving_in_process
from tests.harness.vouchers import many, voucher

SERVICE = "/spiris.skattbokslut.fortnox.v1.FortnoxService/"
DAY = date(2025, 12, 31)


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxHandle]:
    with running_sandbox(rate_limit=RATE_LIMIT, rate_window_seconds=RATE_WINDOW_S) as sb:
        yield sb


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
async def channel(sandbox: SandboxHandle, tmp_path: Path) -> AsyncIterator[grpc.aio.Channel]:
    settings = load_settings(service_env(sandbox.base_url, tmp_path / "bridge.sqlite3"))
    async with serving_in_process(settings, TracerProvider()) as running, \
            grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as chan:
        yield chan


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> pb_grpc.FortnoxServiceStub:
    return pb_grpc.FortnoxServiceStub(channel)


def violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The field violations of the error's ``BadRequest`` detail (empty when it has none)."""
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    if not any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR)):
        return []
    return [(v.field, v.description) for v in bad.field_violations]


async def refused(call: Any) -> grpc.aio.AioRpcError:
    """The error a unary or server-streaming call ends with."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _finish(call)
    return caught.value


async def _finish(call: Any) -> None:
    if isinstance(call, grpc.aio.UnaryStreamCall | grpc.aio.StreamStreamCall):
        async for _ in call:
            pass
    else:
        await call


async def raw_call(channel: grpc.aio.Channel, rpc: str, data: bytes) -> grpc.aio.AioRpcError:
    """Sends ``data`` as the request bytes of a unary ``rpc``, bypassing any serializer."""
    call = channel.unary_unary(SERVICE + rpc, request_serializer=None,
                               response_deserializer=None)
    return await refused(call(data))


# -- requests whose bytes are not a message ------------------------------------------------

@pytest.mark.parametrize(("data", "cause"), [
    (b"\x0a\x09ab", "Wire format was corrupt"),  # a field longer than the message
    (b"\x0a\x02\xff\xfe", "String field had bad UTF-8"),
])
async def test_bytes_that_are_no_message_are_invalid_argument_with_a_reason(
    channel: grpc.aio.Channel, data: bytes, cause: str,
) -> None:
    for rpc in ("GetConnection", "ImportSie"):
        if rpc == "ImportSie":
            call = channel.unary_stream(SERVICE + rpc, request_serializer=None,
                                        response_deserializer=None)
            error = await refused(call(data))
        else:
            error = await raw_call(channel, rpc, data)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, rpc
        assert error_info(error).reason == "MALFORMED_REQUEST"
        assert cause in (error.details() or "")


async def test_a_malformed_message_in_a_request_stream_is_answered_with_a_reason(
    channel: grpc.aio.Channel,
) -> None:
    reflection = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    call = channel.stream_stream(reflection, request_serializer=None, response_deserializer=None)
    error = await refused(call(iter([b"\x0a\x09ab"])))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "MALFORMED_REQUEST"


async def test_a_request_over_the_size_limit_is_resource_exhausted_with_a_reason(
    channel: grpc.aio.Channel,
) -> None:
    data = pb.GetConnectionRequest(tenant="a" * MAX_REQUEST_BYTES).SerializeToString()
    error = await raw_call(channel, "GetConnection", data)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info = error_info(error)
    assert info.reason == "REQUEST_TOO_LARGE"
    assert dict(info.metadata) == {"size_bytes": str(len(data)),
                                   "limit_bytes": str(MAX_REQUEST_BYTES)}


# -- errors about large input stay small enough to arrive -----------------------------------

async def test_200_invalid_vouchers_arrive_as_vouchers_invalid_with_a_count(
    stub: pb_grpc.FortnoxServiceStub,
) -> None:
    vouchers = [voucher(f"v{n}", DAY, 100, text=f"Fel {n}") for n in range(200)]
    for item in vouchers:
        item.rows[1].credit_minor = 99  # unbalanced by one öre each
    error = await refused(stub.ExportVouchers(pb.ExportVouchersRequest(
        tenant="acme", request_id=str(uuid.uuid4()), vouchers=vouchers)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(error)
    assert (info.reason, info.metadata["violations"]) == ("VOUCHERS_INVALID", "200")
    shown = violations(error)
    assert len(shown) == MAX_VIOLATIONS
    assert shown[0] == ("vouchers[0].rows", "debit and credit differ by 1 öre; they must balance")
    status = rpc_status.from_call(error)
    assert status is not None and status.ByteSize() <= MAX_STATUS_BYTES


async def test_a_1_mb_import_id_is_refused_by_its_bound(stub: pb_grpc.FortnoxServiceStub) -> None:
    error = await refused(stub.GetImport(pb.GetImportRequest(tenant="acme",
                                                             import_id="x" * 1024 * 1024)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "INVALID_REQUEST"
    assert violations(error) == [("import_id", "at most 64 characters (has 1048576)")]


async def test_a_100k_character_series_is_refused_by_its_bound(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle,
) -> None:
    await connect(stub, "acme")  # so that, unbounded, Fortnox's books would be read
    error = await refused(stub.ExportVouchers(pb.ExportVouchersRequest(
        tenant="acme", request_id=str(uuid.uuid4()), voucher_series="S" * 100_000,
        vouchers=many("v", DAY, 2))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "INVALID_REQUEST"
    assert violations(error) == [("voucher_series", "at most 10 characters (has 100000)")]


# -- every stored string is bounded ---------------------------------------------------------

def _row(**fields: Any) -> v_pb.ExportVoucherRow:
    return v_pb.ExportVoucherRow(account=1930, debit_minor=1, **fields)


def _export(**fields: Any) -> pb.ExportVouchersRequest:
    fields.setdefault("vouchers", many("v", DAY, 1))
    fields.setdefault("request_id", str(uuid.uuid4()))
    return pb.ExportVouchersRequest(tenant="acme", **fields)


def _voucher(**fields: Any) -> pb.ExportVouchersRequest:
    return _export(vouchers=[v_pb.ExportVoucher(**fields)])


Case = tuple[str, Callable[[], Message], str, str]
TOO_LONG = "at most {} characters (has {})"
CASES: list[Case] = [
    ("GetConnection", lambda: pb.GetConnectionRequest(tenant="t" * 65), "tenant",
     TOO_LONG.format(64, 65)),
    ("Disconnect", lambda: pb.DisconnectRequest(tenant="acme corp"), "tenant",
     "may hold only letters, digits and . _ : @ -, starting with a letter or digit"),
    ("Connect", lambda: pb.ConnectRequest(tenant="acme", redirect_uri="h" * 2049),
     "redirect_uri", TOO_LONG.format(2048, 2049)),
    ("Connect", lambda: pb.ConnectRequest(tenant="acme", expected_organisation_number="5" * 21),
     "expected_organisation_number", TOO_LONG.format(20, 21)),
    ("Connect", lambda: pb.ConnectRequest(tenant="acme", scopes=[""]), "scopes[0]",
     "must be one of: archive, bookkeeping, companyinformation, connectfile, costcenter, "
     "customer, inbox, invoice, payment, project, settings, supplier, supplierinvoice"),
    ("Connect", lambda: pb.ConnectRequest(tenant="acme", scopes=["bookkeeping"] * 10_000),
     "scopes", "at most 13 entries (has 10000)"),
    ("CompleteConnect", lambda: pb.CompleteConnectRequest(state="s" * 129, code="c"), "state",
     TOO_LONG.format(128, 129)),
    ("CompleteConnect", lambda: pb.CompleteConnectRequest(state="s", code="c" * 1025), "code",
     TOO_LONG.format(1024, 1025)),
    ("ImportSie", lambda: pb.ImportSieRequest(tenant="acme", years=[
        sie_pb.YearSelector(financial_year_id=n) for n in range(21)]), "years",
     "at most 20 entries (has 21)"),
    ("ImportSie", lambda: pb.ImportSieRequest(tenant="acme", sie_type=9), "sie_type",
     "9 is not a value of SieType"),
    ("ImportLedgers", lambda: pb.ImportLedgersRequest(tenant="acme", ledgers=[1, 2, 1]),
     "ledgers", "at most 2 entries (has 3)"),
    ("ImportLedgers", lambda: pb.ImportLedgersRequest(tenant="acme", ledgers=[7]),
     "ledgers[0]", "7 is not a value of LedgerKind"),
    ("ExportVouchers", lambda: _export(target=3), "target",  # unknown target
     "3 is not a value of Target"),
    ("ExportVouchers", lambda: _export(vouchers=many("v", DAY, 5001)), "vouchers",
     "at most 5000 entries (has 5001)"),
    ("ExportVouchers", lambda: _export(request_id="r" * 65), "request_id",
     TOO_LONG.format(64, 65)),
    ("ExportVouchers", lambda: _voucher(external_id="e" * 201), "vouchers[0].external_id",
     TOO_LONG.format(200, 201)),
    ("ExportVouchers", lambda: _voucher(description="d" * 201), "vouchers[0].description",
     TOO_LONG.format(200, 201)),
    ("ExportVouchers", lambda: _voucher(description="två\nrader"), "vouchers[0].description",
     "may hold only characters other than control characters"),
    ("ExportVouchers", lambda: _voucher(rows=[_row()] * 1001), "vouchers[0].rows",
     "at most 1000 entries (has 1001)"),
    ("ExportVouchers", lambda: _voucher(rows=[_row(description="r" * 101)]),
     "vouchers[0].rows[0].description", TOO_LONG.format(100, 101)),
    ("ExportVouchers", lambda: _voucher(rows=[_row(cost_center="c" * 11)]),
     "vouchers[0].rows[0].cost_center", TOO_LONG.format(10, 11)),
    ("ExportVouchers", lambda: _voucher(rows=[_row(project="p" * 21)]),
     "vouchers[0].rows[0].project", TOO_LONG.format(20, 21)),
    ("ListVoucherExports", lambda: pb.ListVoucherExportsRequest(tenant="acme",
                                                                external_id="e" * 201),
     "external_id", TOO_LONG.format(200, 201)),
    ("ListVoucherExports", lambda: pb.ListVoucherExportsRequest(tenant="acme",
                                                                page_token="p" * 513),
     "page_token", TOO_LONG.format(512, 513)),
    ("ListImports", lambda: pb.ListImportsRequest(tenant="acme", kind=5),
     "kind", "5 is not a value of Kind"),
]


@pytest.mark.parametrize(("rpc", "make", "field", "description"), CASES,
                         ids=[f"{c[0]}-{c[2]}-{n}" for n, c in enumerate(CASES)])
async def test_a_field_out_of_bounds_is_invalid_request_naming_the_field(
    channel: grpc.aio.Channel, rpc: str, make: Callable[[], Message], field: str,
    description: str,
) -> None:
    error = await raw_call(channel, rpc, make().SerializeToString())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "INVALID_REQUEST"
    assert violations(error) == [(field, description)]


TENANTED = [m.name for m in pb.DESCRIPTOR.services_by_name["FortnoxService"].methods
            if "tenant" in m.input_type.fields_by_name]


@pytest.mark.parametrize("rpc", TENANTED)
async def test_an_empty_tenant_is_invalid_request_naming_the_field(
    channel: grpc.aio.Channel, rpc: str
) -> None:
    # every RPC but CompleteConnect, ListConnections, ListWatches and StreamBookChanges
    assert len(TENANTED) == 14
    error = await raw_call(channel, rpc, b"")  # every field unset, the tenant too
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "INVALID_REQUEST"
    assert violations(error) == [("tenant", "must not be empty")]


async def test_x_requested_by_is_bounded(stub: pb_grpc.FortnoxServiceStub) -> None:
    error = await refused(stub.ExportVouchers(_export(), metadata=(("x-requested-by", "u" * 201),)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "INVALID_REQUEST"
    assert violations(error) == [("x-requested-by", TOO_LONG.format(200, 201))]


# -- smaller ones -----------------------------------------------------------------------------

@pytest.mark.parametrize("request_id", ["", "not-a-uuid"])
async def test_a_missing_or_malformed_request_id_is_an_invalid_request(
    stub: pb_grpc.FortnoxServiceStub, request_id: str,
) -> None:
    error = await refused(stub.ExportVouchers(_export(request_id=request_id)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "INVALID_REQUEST"
    assert violations(error) == [("request_id", "must be a UUID")]


def _forged(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


@pytest.mark.parametrize("token", [
    "not-a-token",
    _forged("garbage|x"),
    _forged("2025-01-01T00:00:00|x"),  # no zone: never issued
    _forged("2025-01-01T00:00:00.000000+00:00|"),  # no key
    _forged("2025-01-01T00:00:00.000000+00:00|x") + "\n",  # not canonical
])
async def test_a_forged_page_token_is_refused(
    stub: pb_grpc.FortnoxServiceStub, token: str,
) -> None:
    for call in (stub.ListImports(pb.ListImportsRequest(tenant="acme", page_token=token)),
                 stub.ListVoucherExports(pb.ListVoucherExportsRequest(tenant="acme",
                                                                      page_token=token))):
        error = await refused(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(error).reason == "INVALID_REQUEST"
        assert [f for f, _ in violations(error)] == ["page_token"]


async def test_a_known_kind_still_filters_the_import_history(
    stub: pb_grpc.FortnoxServiceStub,
) -> None:
    listed = await stub.ListImports(pb.ListImportsRequest(
        tenant="acme", kind=history_pb.Import.KIND_LEDGERS))
    assert list(listed.imports) == []


async def test_a_date_in_no_financial_year_is_financial_year_not_found_in_both_imports(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle,
) -> None:
    await connect(stub, "acme")
    outside = date_pb2.Date(year=1990, month=12, day=31)
    sie = await refused(stub.ImportSie(pb.ImportSieRequest(
        tenant="acme", omit_raw_chunks=True, years=[sie_pb.YearSelector(date_in_year=outside)])))
    ledgers = await refused(stub.ImportLedgers(pb.ImportLedgersRequest(
        tenant="acme", balance_date=outside, ledgers=[l_pb.LEDGER_KIND_CUSTOMER])))
    for error in (sie, ledgers):
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(error).reason == "FINANCIAL_YEAR_NOT_FOUND"


async def test_a_known_scope_list_connects(
    stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle,
) -> None:
    connection = await connect(stub, "acme", scopes=("bookkeeping", "companyinformation"))
    assert connection.tenant == "acme"


async def test_fortnox_rate_limiting_tells_the_caller_when_to_retry(
    sandbox: SandboxHandle, tmp_path: Path,
) -> None:
    async with bridge.serving_bridge(sandbox, tmp_path) as served:
        await connect(served.stub, bridge.TENANT, sandbox.tenants[0])
        sandbox.add_fault("rate_limit")  # Fortnox answers 429 to everything
        error = await refused(served.stub.ImportLedgers(pb.ImportLedgersRequest(
            tenant=bridge.TENANT, balance_date=date_pb2.Date(year=2025, month=12, day=31))))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(error).reason == "FORTNOX_RATE_LIMITED"
    status = rpc_status.from_call(error)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in status.details if d.Is(retry.DESCRIPTOR))
    assert retry.retry_delay.ToSeconds() == 5  # Fortnox's window; it sends no Retry-After
