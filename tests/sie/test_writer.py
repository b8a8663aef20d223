"""Writer: exact bytes for a small 4I file, the CP437 rule, refusals, and round trips."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from sie import (
    Account,
    Balance,
    BalanceKind,
    FinancialYear,
    Generated,
    OrgNumber,
    Program,
    RowKind,
    SieDocument,
    TransRow,
    Variant,
    Voucher,
    read_document,
)
from sie.policy import ReadPolicy
from sie.writer import write_4i, write_document
from tests.sie.strategies import documents

HEADER = SieDocument(
    program=Program("fortnox-bridge", "0.1"),
    generated=Generated(date(2026, 1, 15), "Skatt & Bokslut"),
    company_name="Övningsbolaget AB",
    org_number=OrgNumber("556677-8899"),
    financial_years=(FinancialYear(0, date(2025, 1, 1), date(2025, 12, 31)),),
    accounts=(Account("1930", "Företagskonto"), Account("8999", "Årets resultat")),
)
RENT = Voucher(
    "",
    "",
    date(2025, 12, 31),
    (
        TransRow(RowKind.TRANS, "1930", -100_000),
        TransRow(RowKind.TRANS, "8999", 100_000, (("6", "P 1"),), text='Hyra "dec"'),
    ),
    "Bokslut",
)


def test_4i_bytes_follow_the_profile() -> None:
    result = write_4i(HEADER, [RENT])
    assert result.findings == ()
    expected = (
        "#FLAGGA 0\r\n"
        '#PROGRAM "fortnox-bridge" "0.1"\r\n'
        "#FORMAT PC8\r\n"
        '#GEN 20260115 "Skatt & Bokslut"\r\n'
        "#SIETYP 4\r\n"
        "#ORGNR 556677-8899\r\n"
        '#FNAMN "Övningsbolaget AB"\r\n'
        "#RAR 0 20250101 20251231\r\n"
        '#KONTO 1930 "Företagskonto"\r\n'
        '#KONTO 8999 "Årets resultat"\r\n'
        '#VER "" "" 20251231 "Bokslut"\r\n'
        "{\r\n"
        "#TRANS 1930 {} -1000.00\r\n"
        '#TRANS 8999 {6 "P 1"} 1000.00 "" "Hyra \\"dec\\""\r\n'
        "}\r\n"
    ).encode("cp437")
    assert result.data == expected


def test_checksum_is_computed_by_the_spec_rule() -> None:
    result = write_4i(HEADER, [RENT], checksum=True)
    document = read_document(result.data, ReadPolicy(variant=Variant.IMPORT))
    assert document.summary is not None and document.summary.checksum == "verified"
    tampered = result.data.replace(b"-1000.00", b"-1000.01").replace(b" 1000.00", b" 1000.01")
    tampered_summary = read_document(tampered).summary
    assert tampered_summary is not None and tampered_summary.checksum == "mismatch"


def test_unmappable_characters_are_replaced_and_reported() -> None:
    voucher = RENT._replace(text="Hyra \u20ac \u201cQ\u201d \u0142\u00f3d\u017a C:\\")
    result = write_4i(HEADER, [voucher])
    assert b'"Hyra EUR \\"Q\\" ?\xa2dz C:/"' in result.data
    replaced = [f for f in result.findings if f.code == "CHARACTER_REPLACED"]
    assert len(replaced) == 6 and {f.line for f in replaced} == {11}
    assert result.ok


def test_refusals() -> None:
    balance = Balance(BalanceKind.IB, 0, "1930", Decimal(1))
    with pytest.raises(ValueError, match="forbidden in a 4I"):
        write_4i(_with(balances=(balance,)))
    with pytest.raises(ValueError, match="FLAGGA 0"):
        write_4i(_with(flag=1))
    with pytest.raises(ValueError, match="beyond 15 digits"):
        write_4i(HEADER, [RENT._replace(rows=(RENT.rows[0]._replace(ore=-(10**17)),))])


def _with(**changes: Any) -> SieDocument:
    return replace(HEADER, **changes)


def test_unbalanced_vouchers_are_reported_as_errors() -> None:
    result = write_4i(HEADER, [RENT._replace(rows=RENT.rows[:1])])
    assert not result.ok and [f.code for f in result.findings] == ["VOUCHER_UNBALANCED"]


def _read_back(data: bytes, variant: Variant) -> SieDocument:
    return read_document(data, ReadPolicy(variant=variant))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_round_trip_4e(document: SieDocument) -> None:
    result = write_document(document, Variant.EXPORT, checksum=True)
    assert result.findings == () or all(f.code != "CHARACTER_REPLACED" for f in result.findings)
    again = _read_back(result.data, Variant.EXPORT)
    assert again == document
    assert again.summary is not None and again.summary.checksum == "verified"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(import_file=True))
def test_round_trip_4i(document: SieDocument) -> None:
    result = write_4i(document)
    again = _read_back(result.data, Variant.IMPORT)
    assert again == document
    assert "FORBIDDEN_RECORD_IN_4I" not in {f.code for f in again.findings}
