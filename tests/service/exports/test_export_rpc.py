"""ExportVouchers through a real gRPC channel against the sandbox: exactly once under lost
answers, every validation problem reported with nothing posted, request ids, the SIE file."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import sie
from sandbox.testing import ALL_SCOPES, SandboxHandle
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb
from tests.harness.bridge import TENANT, Bridge
from tests.harness.connect import connect
from tests.harness.errors import error_info, fails
from tests.harness.vouchers import many, request, voucher

DAY = date(2025, 12, 31)
Outcome = v_pb.VoucherResult


def _violations(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return fields


async def test_lost_answers_still_give_exactly_one_voucher_each(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    fortnox = sandbox.tenants[0].id
    sandbox.add_fault("commit_drop", method="POST", path="/3/vouchers", probability=0.3)
    sandbox.add_fault("error", method="POST", path="/3/vouchers", status=503, probability=0.1)
    call = request(TENANT, many("adj", DAY, 40))
    response, refusals = None, []
    for _ in range(20):  # answers lost thrice in a row end the call: the caller retries
        try:
            response = await bridge.stub.ExportVouchers(call)
            break
        except grpc.aio.AioRpcError as exc:
            refusals.append(exc.code())
    assert response is not None
    assert set(refusals) <= {grpc.StatusCode.UNAVAILABLE}
    sandbox.clear_faults()
    created = sandbox.created_vouchers(fortnox)
    assert len(created) == 40
    assert {r.outcome for r in response.results} == {Outcome.OUTCOME_CREATED}
    numbers = {r.external_id: r.voucher_number for r in response.results}
    assert sorted(v["VoucherNumber"] for v in created) == sorted(numbers.values())
    by_number = {v["VoucherNumber"]: v["Comments"] for v in created}
    assert all(by_number[n].endswith(f" {ext}") for ext, n in numbers.items())

    again = await bridge.stub.ExportVouchers(call)
    assert again == response
    other = await bridge.stub.ExportVouchers(request(TENANT, list(call.vouchers[:3])))
    assert [r.outcome for r in other.results] == [Outcome.OUTCOME_ALREADY_EXPORTED] * 3
    assert [r.voucher_number for r in other.results] == [numbers[f"adj-{n}"] for n in range(3)]
    assert len(sandbox.created_vouchers(fortnox)) == 40

    listed = await bridge.stub.ListVoucherExports(pb.ListVoucherExportsRequest(
        tenant=TENANT, request_id=call.request_id, page_size=1000))
    assert {e.external_id for e in listed.exports} == set(numbers)
    assert all(e.result.outcome == Outcome.OUTCOME_CREATED for e in listed.exports)


async def test_validation_failures_post_nothing(bridge: Bridge, sandbox: SandboxHandle) -> None:
    bad_rows = voucher("rows", DAY, 500, debit=9999)
    unbalanced = voucher("unbalanced", DAY, 500)
    unbalanced.rows[1].credit_minor = 499
    vouchers = [voucher("ok", DAY, 100), bad_rows, unbalanced,
                voucher("locked", date(2024, 6, 30), 100), voucher("no-year", date(2031, 1, 1), 1),
                voucher("", DAY, 100, text="")]
    for validate_only in (False, True):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await bridge.stub.ExportVouchers(request(TENANT, vouchers,
                                                     validate_only=validate_only))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(caught.value).reason == "VOUCHERS_INVALID"
        assert set(_violations(caught.value)) == {
            "vouchers[2].rows", "vouchers[5].external_id", "vouchers[5].description"}
    # The shape is fine; only the books can say what is wrong now.
    vouchers = [voucher("ok", DAY, 100), bad_rows, voucher("locked", date(2024, 6, 30), 100),
                voucher("no-year", date(2031, 1, 1), 1)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bridge.stub.ExportVouchers(request(TENANT, vouchers))
    assert set(_violations(caught.value)) == {
        "vouchers[1].rows[0].account", "vouchers[2].transaction_date",
        "vouchers[3].transaction_date"}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bridge.stub.ExportVouchers(request(TENANT, [voucher("ok", DAY, 100)],
                                                 voucher_series="Q"))
    assert _violations(caught.value) == ["voucher_series"]
    assert sandbox.created_vouchers(sandbox.tenants[0].id) == []


async def test_validate_only_answers_valid_and_posts_nothing(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    call = request(TENANT, many("check", DAY, 3), validate_only=True)
    response = await bridge.stub.ExportVouchers(call)
    assert [r.outcome for r in response.results] == [Outcome.OUTCOME_VALID] * 3
    assert sandbox.created_vouchers(sandbox.tenants[0].id) == []
    call.validate_only = False  # the same id may then post for real
    posted = await bridge.stub.ExportVouchers(call)
    assert [r.outcome for r in posted.results] == [Outcome.OUTCOME_CREATED] * 3


async def test_a_request_id_cannot_carry_other_vouchers(bridge: Bridge) -> None:
    request_id = str(uuid.uuid4())
    await bridge.stub.ExportVouchers(request(TENANT, many("a", DAY, 2), request_id))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bridge.stub.ExportVouchers(request(TENANT, many("b", DAY, 2), request_id))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(caught.value).reason == "REQUEST_ID_REUSED"


async def test_unknown_cost_centres_and_projects_are_found_before_anything_is_posted(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    call = request(TENANT, [voucher("ok", DAY, 100), voucher("cc", DAY, 200),
                            voucher("proj", DAY, 300)])
    call.vouchers[0].rows[0].cost_center = "100"  # a cost centre the company has
    call.vouchers[1].rows[0].cost_center = "NOPE"
    call.vouchers[2].rows[1].project = "NOPE"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bridge.stub.ExportVouchers(call)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(caught.value) == ["vouchers[1].rows[0].cost_center",
                                         "vouchers[2].rows[1].project"]
    assert sandbox.created_vouchers(sandbox.tenants[0].id) == []  # booked whole or not at all


async def test_amounts_beyond_the_target_are_located_violations(bridge: Bridge,
                                                                sandbox: SandboxHandle) -> None:
    for target, amount in ((pb.ExportVouchersRequest.TARGET_FORTNOX_API, 10**14),
                           (pb.ExportVouchersRequest.TARGET_SIE_4I_FILE, 10**17)):
        call = request(TENANT, [voucher("big", DAY, 1)], target=target)
        for row, side in zip(call.vouchers[0].rows, ("debit_minor", "credit_minor"),
                             strict=True):
            setattr(row, side, amount)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await bridge.stub.ExportVouchers(call)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, target
        assert error_info(caught.value).reason == "VOUCHERS_INVALID"
        assert _violations(caught.value) == ["vouchers[0].rows[0].debit_minor",
                                             "vouchers[0].rows[1].credit_minor"]
        fits = request(TENANT, [voucher("fits", DAY, 1)], target=target)
        for row, side in zip(fits.vouchers[0].rows, ("debit_minor", "credit_minor"),
                             strict=True):
            setattr(row, side, amount - 1)
        assert len((await bridge.stub.ExportVouchers(fits)).results) == 1
    assert len(sandbox.created_vouchers(sandbox.tenants[0].id)) == 1


async def test_a_refusal_after_validation_is_stored_per_voucher(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    call = request(TENANT, [voucher("refused", DAY, 100)])
    sandbox.add_fault("reject", method="POST", path="/3/vouchers", count=1)
    response = await bridge.stub.ExportVouchers(call)
    (refused,) = response.results
    assert refused.outcome == Outcome.OUTCOME_REJECTED and refused.fortnox_code == "2000546"
    assert refused.reason == "FORTNOX_REJECTED" and refused.fortnox_message
    assert await bridge.stub.ExportVouchers(call) == response
    assert sandbox.created_vouchers(sandbox.tenants[0].id) == []


async def test_sie_file_target_holds_the_vouchers(bridge: Bridge, sandbox: SandboxHandle) -> None:
    call = request(TENANT, many("file", DAY, 3), target=pb.ExportVouchersRequest.TARGET_SIE_4I_FILE)
    response = await bridge.stub.ExportVouchers(call)
    assert response.sie_file_name.endswith(".si")
    document = sie.read_document(response.sie_file)
    assert [(v.series, v.date, [r.amount for r in v.transactions]) for v in document.vouchers] == [
        ("I", DAY, [Decimal(n), Decimal(-n)]) for n in (1, 2, 3)]
    assert sandbox.created_vouchers(sandbox.tenants[0].id) == []
    company = sandbox.tenants[0]  # the file names the connected company, for the receiver
    assert (document.company_name, document.org_number and document.org_number.number) == (
        company.name, company.organisation_number)


async def test_sie_file_target_needs_no_connection(bridge: Bridge) -> None:
    call = request("files-only", many("f", DAY, 1),
                   target=pb.ExportVouchersRequest.TARGET_SIE_4I_FILE)
    document = sie.read_document((await bridge.stub.ExportVouchers(call)).sie_file)
    assert document.company_name == "files-only"
    assert len(document.vouchers) == 1


async def test_without_the_settings_scope_nothing_is_posted_blind(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    """The locked period cannot be read, so the export stops before its first POST."""
    scopes = [s for s in ALL_SCOPES if s != "settings"]
    await connect(bridge.stub, "no-settings", sandbox.tenants[0], scopes=scopes)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bridge.stub.ExportVouchers(request("no-settings", many("n", DAY, 2)))
    assert error_info(caught.value).reason == "FORTNOX_SCOPE_MISSING"
    assert sandbox.created_vouchers(sandbox.tenants[0].id) == []


def _rows(count: int, text: str = "") -> list[v_pb.ExportVoucherRow]:
    """``count`` rows (even) that balance: 1.00 on 6110 and back from 1930, in turn."""
    return [v_pb.ExportVoucherRow(account=6110, debit_minor=100, description=text) if n % 2 == 0
            else v_pb.ExportVoucherRow(account=1930, credit_minor=100, description=text)
            for n in range(count)]


def _file_request(vouchers: int, rows: int, text: str = "") -> pb.ExportVouchersRequest:
    made = [voucher(f"big-{n}", DAY, 100) for n in range(vouchers)]
    for item in made:
        item.ClearField("rows")
        item.rows.extend(_rows(rows, text))
    return request(TENANT, made, target=pb.ExportVouchersRequest.TARGET_SIE_4I_FILE)


async def test_a_sie_file_too_large_for_an_answer_is_refused_up_front_with_a_reason(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    call = _file_request(250, 1000)  # 1.8 MB asking for a 5.4 MB file
    assert 1_700_000 < call.ByteSize() < 2_000_000
    before = sandbox.stats()["requests"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await bridge.stub.ExportVouchers(call)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(refused.value)
    assert info.reason == "ANSWER_TOO_LARGE"
    assert int(info.metadata["size_bytes"]) > 5_300_000
    assert (info.metadata["limit_bytes"], info.metadata["exact"]) == (str(4 * 1024 * 1024), "false")
    assert _violations(refused.value) == ["vouchers"]
    assert sandbox.stats()["requests"] == before  # not even the company was looked up
    assert sandbox.created_vouchers(sandbox.tenants[0].id) == []


async def test_vouchers_whose_results_could_outgrow_an_answer_are_refused_before_posting(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    wide = "\U0001f600" * 195  # 780 bytes of UTF-8 in each id: a result can take 1.4 kB
    call = request(TENANT, [voucher(f"{n:05d}{wide}", DAY, 100) for n in range(4000)])
    before = sandbox.stats()["requests"]
    refused = await fails(bridge.stub.ExportVouchers(call),
                          grpc.StatusCode.INVALID_ARGUMENT, "ANSWER_TOO_LARGE")
    assert error_info(refused).metadata["target"] == "fortnox_api"
    assert sandbox.stats()["requests"] == before
    assert sandbox.created_vouchers(sandbox.tenants[0].id) == []


async def test_the_largest_sie_file_answer_reaches_a_client_with_default_limits(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    # Rows of 127 bytes: 34 vouchers of 1,000 are just over the limit, 33 just under.
    over = await fails(bridge.stub.ExportVouchers(_file_request(34, 1000, "a" * 99)),
                       grpc.StatusCode.INVALID_ARGUMENT, "ANSWER_TOO_LARGE")
    assert error_info(over).metadata["exact"] == "false"
    answer = await bridge.stub.ExportVouchers(_file_request(33, 1000, "a" * 99))
    assert len(answer.results) == 33
    assert 4_150_000 < answer.ByteSize() <= 4 * 1024 * 1024  # the channel's default limit
    assert len(sie.read_document(answer.sie_file).vouchers) == 33
