"""One rounding rule for money: half up, away from zero on a tie, the way Fortnox rounds."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.ledgers.model import sek
from core.ledgers.sources import _in_currency
from core.money import to_cent, to_kronor, to_ore


@pytest.mark.parametrize(("amount", "ore"), [
    ("0.005", 1), ("0.015", 2), ("0.025", 3),  # half-even would give 0, 2, 2
    ("-0.005", -1), ("-0.025", -3), ("0.0049", 0), ("1234567.89", 123456789), ("0", 0),
])
def test_to_ore_rounds_half_up(amount: str, ore: int) -> None:
    assert to_ore(Decimal(amount)) == ore


def test_to_cent_and_currency_conversion_use_the_same_rule() -> None:
    assert to_cent(Decimal("2.345")) == Decimal("2.35")
    assert to_cent(Decimal("-2.345")) == Decimal("-2.35")
    assert sek(Decimal("10.00"), Decimal("1.2345")) == Decimal("12.35")  # 12.345 → 12.35
    assert to_cent(Decimal("12.34")) == Decimal("12.34")  # two decimals are never changed


def test_a_payment_converted_back_to_its_currency_rounds_half_up() -> None:
    assert _in_currency(Decimal("0.05"), None, "EUR", Decimal("2")) == Decimal("0.03")


@pytest.mark.parametrize(("ore", "kronor"), [
    (12345, "123.45"), (-5, "-0.05"), (100, "1.00"), (0, "0.00"),
    (10**14 - 1, "999999999999.99"), (10**17 - 1, "999999999999999.99"),  # the targets' largest
])
def test_to_kronor_is_exact_with_two_decimals(ore: int, kronor: str) -> None:
    amount = to_kronor(ore)
    assert amount == Decimal(kronor) and str(amount) == kronor
    assert to_ore(amount) == ore
