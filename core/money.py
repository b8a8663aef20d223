"""Money: one rounding rule for the whole service.

Amounts are exact ``Decimal`` until they must become whole öre (a proto's ``*_minor``) or a
conversion between currencies leaves more than two decimals; whole öre become kronor again only
through ``to_kronor``. Both round half up (away from
zero on a tie), as Fortnox rounds currency conversions and Swedish bookkeeping rounds öre.
Amounts Fortnox or a SIE file states have at most two decimals and are never changed.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def to_ore(amount: Decimal) -> int:
    """``amount`` (in kronor, or another currency's major unit) as whole minor units."""
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_kronor(ore: int) -> Decimal:
    """Whole öre (or another currency's minor units) as the exact amount in kronor, with two
    decimals: ``12345`` is ``Decimal("123.45")``."""
    return Decimal(ore).scaleb(-2)


def to_cent(amount: Decimal) -> Decimal:
    """``amount`` rounded to two decimals by the same rule."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)
