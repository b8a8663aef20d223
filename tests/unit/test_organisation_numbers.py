"""Organisation numbers are compared on their 10 digits, however each side writes them."""

from __future__ import annotations

import pytest

from core.connections import require_company_guard, same_organisation
from core.errors import InvalidRequest
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
