"""Validation before posting: every problem reported with its field, pure logic."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date
from decimal import Decimal

from core.fortnox_api import Account, CostCenter, FinancialYear, Project
from core.voucher_export.model import ExportRequest, ExportRow, ExportVoucher, Target
from core.voucher_export.validation import (
    MAX_AMOUNT,
    BookFacts,
    check_against_books,
    check_request,
)

YEAR = FinancialYear(3, date(2026, 1, 1), date(2026, 12, 31), "BAS", "ACCRUAL")


def _account(number: int, active: bool = True) -> Account:
    return Account(number, f"Konto {number}", active, Decimal(0), None, None, "", 3)


FACTS = BookFacts(
    years=[YEAR],
    accounts={3: {n: _account(n) for n in (1930, 8910, 2510)} | {6110: _account(6110, False)}},
    series={3: frozenset({"A", "I"})},
    locked_until=date(2026, 3, 31),
)


def _voucher(ext: str = "v1", day: date | None = date(2026, 12, 31), debit: int = 100_00,
             credit: int = 100_00, text: str = "Skatt") -> ExportVoucher:
    return ExportVoucher(ext, day, text, (ExportRow(8910, debit=debit),
                                          ExportRow(2510, credit=credit)))


def _request(*vouchers: ExportVoucher, request_id: str | None = None) -> ExportRequest:
    return ExportRequest("t1", request_id or str(uuid.uuid4()), vouchers)


def test_a_good_request_has_no_problems() -> None:
    request = _request(_voucher("v1"), _voucher("v2"))
    assert check_request(request) == []
    assert check_against_books(list(enumerate(request.vouchers)), "I", FACTS) == []


def test_each_problem_names_its_field() -> None:
    bad = _request(
        _voucher("v1", credit=99_99),
        _voucher("v1", text=" "),
        _voucher("", day=None),
        ExportVoucher("v4", date(2026, 6, 1), "x", (ExportRow(8910, debit=5, credit=5),)),
    )
    fields = {v.field for v in check_request(bad)}
    assert fields == {
        "vouchers[0].rows", "vouchers[1].external_id", "vouchers[1].description",
        "vouchers[2].external_id", "vouchers[2].transaction_date", "vouchers[3].rows",
        "vouchers[3].rows[0]",
    }


def test_books_reveal_year_lock_series_and_accounts() -> None:
    vouchers = [
        (0, _voucher("outside", day=date(2027, 1, 5))),
        (1, _voucher("locked", day=date(2026, 2, 1))),
        (2, ExportVoucher("accounts", date(2026, 12, 31), "x",
                          (ExportRow(6110, debit=1), ExportRow(4999, credit=1)))),
    ]
    found = {(v.field, v.description) for v in check_against_books(vouchers, "Q", FACTS)}
    assert found == {
        ("vouchers[0].transaction_date", "2027-01-05 is in no Fortnox financial year"),
        ("vouchers[1].transaction_date", "2026-02-01 is in a locked period (locked until "
                                         "2026-03-31)"),
        ("voucher_series", "series 'Q' does not exist in year 3"),
        ("vouchers[2].rows[0].account", "account 6110 is inactive"),
        ("vouchers[2].rows[1].account", "account 4999 does not exist in year 3"),
    }


def test_cost_centres_and_projects_must_exist_and_be_active() -> None:
    facts = replace(FACTS, cost_centers={"100": CostCenter("100", "Sälj", True),
                                         "200": CostCenter("200", "Gammal", False)},
                    projects={"P1": Project("P1", "Pågår", "ONGOING"),
                              "P2": Project("P2", "Klar", "COMPLETED")})
    rows = (ExportRow(8910, debit=1, cost_center="100", project="P1"),
            ExportRow(2510, credit=1, cost_center="200", project="P2"),
            ExportRow(2510, debit=1, cost_center="300", project="P3"),
            ExportRow(8910, credit=1))
    found = {(v.field, v.description) for v in check_against_books(
        [(0, ExportVoucher("dims", date(2026, 12, 31), "x", rows))], "I", facts)}
    assert found == {
        ("vouchers[0].rows[1].cost_center", "cost centre '200' is inactive"),
        ("vouchers[0].rows[1].project", "project 'P2' is completed"),
        ("vouchers[0].rows[2].cost_center", "cost centre '300' does not exist"),
        ("vouchers[0].rows[2].project", "project 'P3' does not exist"),
    }


def test_accounts_that_demand_or_refuse_a_dimension() -> None:
    strict = replace(_account(8910), cost_center_settings="MANDATORY",
                     project_settings="NOTALLOWED")
    facts = replace(FACTS, accounts={3: {**FACTS.accounts[3], 8910: strict}},
                    projects={"P1": Project("P1", "Pågår", "ONGOING")})
    rows = (ExportRow(8910, debit=1, project="P1"), ExportRow(2510, credit=1, project="P1"))
    found = {(v.field, v.description) for v in check_against_books(
        [(0, ExportVoucher("settings", date(2026, 12, 31), "x", rows))], "I", facts)}
    assert found == {
        ("vouchers[0].rows[0].cost_center", "account 8910 needs a cost centre"),
        ("vouchers[0].rows[0].project", "account 8910 takes no project"),
    }


def test_amount_limits_follow_the_target() -> None:
    fortnox_max = MAX_AMOUNT[Target.FORTNOX_API]
    assert fortnox_max == 99_999_999_999_999  # 14 digits, the öre included
    assert MAX_AMOUNT[Target.SIE_4I_FILE] == 10**17 - 1  # 15 digits of kronor
    for target, limit in MAX_AMOUNT.items():
        ok = replace(_request(_voucher(debit=limit, credit=limit)), target=target)
        assert check_request(ok) == []
        over = replace(ok, vouchers=(_voucher(debit=limit + 1, credit=limit + 1),))
        assert [v.field for v in check_request(over)] == [
            "vouchers[0].rows[0].debit_minor", "vouchers[0].rows[1].credit_minor"]


def test_digest_follows_content_only() -> None:
    a, b = _voucher("v1"), _voucher("v1")
    assert a.digest() == b.digest()
    assert a.digest() != _voucher("v1", debit=100_01, credit=100_01).digest()
    request = _request(a, request_id="0" * 32)
    assert request.digest("I") != request.digest("A")
