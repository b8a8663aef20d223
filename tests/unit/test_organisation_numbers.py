"""Organisation numbers are compared on their 10 digits, however each side writes them: a
Connect's expected company with Fortnox's, a SIE file's `#ORGNR` with the connected company's."""

from __future__ import annotations

from datetime import date

import pytest

from core.connections import require_company_guard, same_organisation
from core.errors import InvalidRequest, SieInvalid
from core.fortnox_api import FinancialYear
from core.sie_import import _YearCheck
from sie.values import org_number_digits


@pytest.mark.parametrize("written", [
    "550226-1513", "5502261513", "16550226-1513", "165502261513", " 550226-1513 ",
    "195502261513", "550226+1513",
])
def test_every_form_of_one_number_reads_as_its_10_digits(written: str) -> None:
    assert org_number_digits(written) == "5502261513"


@pytest.mark.parametrize("written", [
    "", "n/a", "550226-151", "55022615130", "125502261513", "5502-261513", "550226--1513",
    "１６５５０２２６１５１３",  # fullwidth digits are no organisation number
])
def test_anything_else_is_no_organisation_number(written: str) -> None:
    assert org_number_digits(written) is None


def test_numbers_match_on_their_digits_and_nothing_matches_a_non_number() -> None:
    assert same_organisation("165502261513", "550226-1513")
    assert same_organisation("16550226-1513", "5502261513")
    assert not same_organisation("550226-1513", "556677-8899")
    assert not same_organisation("165566778899", "165502261513")
    assert not same_organisation("n/a", "n/a")
    assert not same_organisation("550226-1513", "")


def test_connect_refuses_an_expected_number_that_is_no_organisation_number() -> None:
    require_company_guard("16550226-1513", allow_any_company=False)
    require_company_guard("", allow_any_company=True)
    with pytest.raises(InvalidRequest) as refused:
        require_company_guard("n/a", allow_any_company=False)
    assert [v.field for v in refused.value.violations] == ["expected_organisation_number"]


YEAR = FinancialYear(7, date(2025, 1, 1), date(2025, 12, 31), "BAS", "ACCRUAL")
HEAD = "#FLAGGA 0\r\n#SIETYP 4\r\n#FNAMN \"Bolaget AB\"\r\n"


@pytest.mark.parametrize("orgnr", [
    "#ORGNR 165502261513\r\n#RAR 0 20250101 20251231\r\n",  # before #RAR, 12 digits
    "#RAR 0 20250101 20251231\r\n#ORGNR 5502261513\r\n",  # after it, as Fortnox writes
    "#RAR 0 20250101 20251231\r\n",  # none: the head ends at the chart
])
def test_the_import_reads_a_files_head_to_its_company_and_lets_the_same_one_pass(
    orgnr: str
) -> None:
    check = _YearCheck(YEAR, "550226-1513")
    check.feed((HEAD + orgnr + "#KONTO 1930 \"Bank\"\r\n").encode("cp437"))
    assert check.done


def test_the_import_refuses_a_file_naming_another_company_wherever_its_head_says_so() -> None:
    check = _YearCheck(YEAR, "550226-1513")
    check.feed((HEAD + "#RAR 0 20250101 20251231\r\n").encode("cp437"))
    assert not check.done  # #ORGNR may follow #RAR
    with pytest.raises(SieInvalid) as refused:
        check.feed(b"#ORGNR 556677-8899\r\n#KONTO 1930 Bank\r\n")
    assert (refused.value.reason, refused.value.metadata["line"]) == ("SIE_COMPANY_MISMATCH", "5")
