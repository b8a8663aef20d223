"""ExportVouchers through a real gRPC channel against a Fortnox (the sandbox) whose answers lie:
a success that does not show the voucher is settled by the look-up, an error inside a success
is an error, a null is a malformed answer; nothing is booked twice or blind."""

from __future__ import annotations

import json
from datetime import date

import grpc

from sandbox.testing import SandboxHandle
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb
from tests.harness.bridge import TENANT, Bridge
from tests.harness.errors import fails
from tests.harness.vouchers import many, request

DAY = date(2025, 12, 31)
Outcome = v_pb.VoucherResult


async def test_a_201_that_does_not_show_the_voucher_is_settled_by_the_look_up(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    """The voucher was booked, the answer says nothing of it: the lost-answer path finds it
    by its marker and answers created, once."""
    fortnox = sandbox.tenants[0].id
    sandbox.add_fault("answer", count=1, method="POST", path="/3/vouchers", status=201,
                      body="{}")
    response = await bridge.stub.ExportVouchers(request(TENANT, many("lie", DAY, 1)))
    created = sandbox.created_vouchers(fortnox)
    assert len(created) == 1
    [result] = response.results
    assert result.outcome == Outcome.OUTCOME_CREATED
    assert (result.voucher_series, result.voucher_number) == (
        created[0]["VoucherSeries"], created[0]["VoucherNumber"])


async def test_error_information_under_a_200_on_the_locked_period_posts_nothing(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    """Before, it read as "no locked period" and the vouchers were posted blind."""
    fortnox = sandbox.tenants[0].id
    sandbox.add_fault("answer", path="/3/settings/lockedperiod", body=json.dumps(
        {"ErrorInformation": {"error": 1, "message": "Ett fel uppstod.", "code": 2000359}}))
    await fails(bridge.stub.ExportVouchers(request(TENANT, many("locked", DAY, 2))),
                grpc.StatusCode.FAILED_PRECONDITION, "FORTNOX_REJECTED")
    assert sandbox.created_vouchers(fortnox) == []


async def test_a_null_account_is_a_malformed_answer_and_posts_nothing(
    bridge: Bridge, sandbox: SandboxHandle
) -> None:
    fortnox = sandbox.tenants[0].id
    sandbox.add_fault("answer", path="/3/accounts", body=json.dumps({
        "MetaInformation": {"@TotalResources": 1, "@TotalPages": 1, "@CurrentPage": 1},
        "Accounts": [None]}))
    await fails(bridge.stub.ExportVouchers(request(TENANT, many("null", DAY, 1))),
                grpc.StatusCode.UNAVAILABLE, "FORTNOX_ANSWER_MALFORMED")
    assert sandbox.created_vouchers(fortnox) == []
