"""Field value parsers: exact amounts, validated dates, small integers, organisation numbers.

Each parser returns None for an invalid value; the reader turns that into a finding.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # mypyc compiles an `i64` as a machine integer; interpreted, it is an int
    from mypy_extensions import i64

MAX_INTEGER_DIGITS: Final = 15
"""Amount limit (spec §7.5: importers check their own limits); keeps Decimal sums exact."""

_AMOUNT_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
_ORE_LIMIT: Final = 100 * 10**MAX_INTEGER_DIGITS
_EXACT: Final = Context(prec=28)
"""Its own context for the conversions between öre and Decimal: at most 17 digits, so exact,
and no caller's context changes what they make."""
_HUNDREDTH: Final = Decimal("0.01")
_TIMES: Final = _EXACT.multiply
DECIMAL: Final = _EXACT.create_decimal
"""Makes the Decimal of a checked amount: equal to `Decimal(text)`, exponent included (at
most 17 digits, so no rounding), in a quarter less time; in `_EXACT`, so no caller's
context changes what it makes. A constant that mypyc keeps in C, not looked up per row."""
_LONGEST: Final = MAX_INTEGER_DIGITS + 4
"""Characters in the longest amount: a minus, the digits, a dot and two decimals."""
_QUANTITY = re.compile(r"-?\d{1,18}(?:\.\d{1,10})?")
_ORG_NUMBER = re.compile(r"(?:16|18|19|20)?(\d{6})[-+]?(\d{4})", re.ASCII)
"""An organisation number: 10 digits, a hyphen (`+` in a centenarian's personal number) after
the sixth optional, and `16` (a legal person) or a century (a sole trader's personal number)
optionally in front: `556677-8899`, `5566778899`, `16556677-8899`, `165566778899`."""
_BY_CHARACTER: Final = not __file__.endswith(".py")
"""Whether amounts and voucher numbers are checked character by character: only when
compiled (interpreted, the loop costs more than the string methods it replaces)."""
_DATE_CACHE: Final[dict[str, date]] = {}  # Final: compiled, a C static, not a global lookup
_DATE_CACHE_LIMIT: Final = 20_000


def parse_amount(text: str) -> Decimal | None:
    """Parse `-?digits[.d[d]]` (15 digits at most; `.20` is tolerated); else None."""
    return None if parse_ore(text) is None else DECIMAL(text)


NO_ORE: Final = -(1 << 62)
"""What `ore_value` gives for text that is not an amount (no amount comes near it)."""


def parse_ore(text: str) -> int | None:
    """The öre of an amount `parse_amount` reads (`"-35.8"` is -3580); else None."""
    value = ore_value(text)
    return None if value == NO_ORE else value


def ore_value(text: str) -> i64:
    """`parse_ore` as a machine integer, `NO_ORE` for an invalid amount: compiled, the
    reader's rows take their öre without an integer object being made and freed per row.

    The reader sums a voucher's rows in öre: an integer sum is exact and a fraction of the
    cost of a `Decimal` sum. Compiled, the text is checked and its value taken character
    by character (a tenth of the cost of `isdecimal` calls and their slices; this runs
    once per voucher row); anything but ASCII digits and a dot, and every amount when
    interpreted, is checked with string methods, which take Unicode decimal digits too,
    as `Decimal`, `int` and a regex's `\\d` do.
    """
    if _BY_CHARACTER:
        size: i64 = len(text)
        if size > _LONGEST:  # also keeps `value` within 64 bits
            return NO_ORE
        start: i64 = 1 if size and ord(text[0]) == 45 else 0  # "-"
        dot: i64 = -1
        value: i64 = 0
        for index in range(start, size):
            char: i64 = ord(text[index])
            if 48 <= char <= 57:  # "0" to "9"
                value = value * 10 + char - 48
            elif char == 46 and dot < 0:  # the first "."
                dot = index
            else:  # check with string methods below
                break
        else:
            if dot < 0:
                if not 0 < size - start <= MAX_INTEGER_DIGITS:
                    return NO_ORE
                value *= 100
            else:
                cents = size - dot - 1
                if dot - start > MAX_INTEGER_DIGITS or not 0 < cents < 3:
                    return NO_ORE
                if cents == 1:
                    value *= 10
            return -value if start else value
    start = 1 if text.startswith("-") else 0
    dot = text.find(".", start)
    if dot < 0:
        digits = len(text) - start
        if not 0 < digits <= MAX_INTEGER_DIGITS or not (text[1:] if start else text).isdecimal():
            return NO_ORE
        return int(text) * 100
    cents = len(text) - dot - 1
    if dot - start > MAX_INTEGER_DIGITS or not 0 < cents < 3:
        return NO_ORE
    if not text[dot + 1 :].isdecimal() or not (dot == start or text[start:dot].isdecimal()):
        return NO_ORE
    return int(text.replace(".", "", 1)) * (10 if cents == 1 else 1)  # "-.5" reads -5 tens


def ore_decimal(ore: int) -> Decimal:
    """The exact `Decimal` of an amount of öre, always with two decimals (-3580 is -35.80):
    what a voucher row's `amount` gives (a multiplication in a fixed context, a third of
    the cost of `Decimal(ore).scaleb(-2)`)."""
    return _TIMES(ore, _HUNDREDTH)


def ore_of(amount: Decimal) -> int:
    """The öre of an exact amount (-35.8 is -3580); ValueError beyond öre precision or 15
    digits, as `format_amount` refuses them."""
    if not amount.is_finite() or abs(amount) >= _AMOUNT_LIMIT:
        raise ValueError(f"amount {amount} is beyond {MAX_INTEGER_DIGITS} digits")
    quantized = amount.quantize(_HUNDREDTH, context=_EXACT)
    if quantized != amount:
        raise ValueError(f"amount {amount} has more than two decimals")
    return int(quantized.scaleb(2, _EXACT))


def ore_at(text: str, start: i64) -> tuple[i64, i64]:
    """`ore_value` of the word of `text` that starts at `start` (up to the next space or the
    end) and where it ends: a voucher row's amount read in place. Compiled, one pass over
    its characters (no search for the space, no copy of the word: this runs once per row);
    a word that is not plain ASCII digits with a minus and a dot, and every word when
    interpreted, is cut out and read by `ore_value`, so both give exactly what it gives."""
    size: i64 = len(text)
    if _BY_CHARACTER:
        index: i64 = start + 1 if start < size and ord(text[start]) == 45 else start  # "-"
        digits: i64 = index
        dot: i64 = -1
        value: i64 = 0
        while index < size and index - start <= _LONGEST:
            char: i64 = ord(text[index])
            if 48 <= char <= 57:  # "0" to "9"
                value = value * 10 + char - 48
            elif char == 46 and dot < 0:  # the first "."
                dot = index
            elif char == 32:  # the space after the amount
                break
            else:  # read by `ore_value` below
                index = size + _LONGEST + 1
                break
            index += 1
        if index - start <= _LONGEST:
            if dot < 0:
                if not 0 < index - digits <= MAX_INTEGER_DIGITS:
                    return NO_ORE, index
                value *= 100
            else:
                cents = index - dot - 1
                if dot - digits > MAX_INTEGER_DIGITS or not 0 < cents < 3:
                    return NO_ORE, index
                if cents == 1:
                    value *= 10
            return (-value if digits > start else value), index
    end: i64 = text.find(" ", start)
    if end < 0:
        end = size
    return ore_value(text[start:end]), end


def parse_quantity(text: str) -> Decimal | None:
    """Parse a quantity (a plain decimal number, up to 10 decimals); else None."""
    if _QUANTITY.fullmatch(text) is None:
        return None
    return Decimal(text)


def org_number_digits(text: str) -> str | None:
    """The 10 digits of an organisation number in any of the forms `_ORG_NUMBER` reads, the
    one key to compare numbers on (programs write one company in each form); else None."""
    match = _ORG_NUMBER.fullmatch(text.strip())
    return None if match is None else match[1] + match[2]


def parse_date(text: str) -> date | None:
    """Parse `YYYYMMDD`; None if malformed or not a calendar date."""
    cached = _DATE_CACHE.get(text)
    if cached is not None:
        return cached
    if len(text) != 8 or not text.isdigit() or not text.isascii():
        return None
    try:
        value = date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
    if len(_DATE_CACHE) >= _DATE_CACHE_LIMIT:
        _DATE_CACHE.clear()
    _DATE_CACHE[text] = value
    return value


def parse_period(text: str) -> date | None:
    """Parse `YYYYMM` into the first day of that month; None if invalid."""
    if len(text) != 6:
        return None
    return parse_date(text + "01")


def ascii_number(text: str) -> int | None:
    """The value of 1 to 18 ASCII digits; None for any other text (a voucher number)."""
    if not _BY_CHARACTER:
        if text.isdigit() and text.isascii() and len(text) < 19:
            return int(text)
        return None
    size: i64 = len(text)
    if not 0 < size < 19:
        return None
    value: i64 = 0
    for index in range(size):
        char: i64 = ord(text[index])
        if not 48 <= char <= 57:  # not "0" to "9"
            return None
        value = value * 10 + char - 48
    return value


def parse_int(text: str) -> int | None:
    """Parse an optionally negative decimal integer of at most 9 digits; else None."""
    digits = text[1:] if text.startswith("-") else text
    if not digits or len(digits) > 9 or not digits.isdigit() or not digits.isascii():
        return None
    return int(text)


def format_amount(value: Decimal) -> str:
    """Write an amount with two decimals; ValueError beyond öre precision or 15 digits."""
    if not value.is_finite() or abs(value) >= _AMOUNT_LIMIT:
        raise ValueError(f"amount {value} is beyond {MAX_INTEGER_DIGITS} digits")
    quantized = value.quantize(_HUNDREDTH)
    if quantized != value:
        raise ValueError(f"amount {value} has more than two decimals")
    return f"{quantized:f}"


def format_ore(ore: int) -> str:
    """Write an amount of öre with two decimals (-3580 is `-35.80`), as `format_amount`
    writes its `Decimal`; ValueError beyond 15 digits."""
    if not -_ORE_LIMIT < ore < _ORE_LIMIT:
        raise ValueError(f"amount {ore_decimal(ore)} is beyond {MAX_INTEGER_DIGITS} digits")
    whole, cents = divmod(-ore if ore < 0 else ore, 100)
    return f"{'-' if ore < 0 else ''}{whole}.{cents:02d}"


def format_decimal(value: Decimal) -> str:
    """Write a quantity in plain notation (no exponent)."""
    return f"{value:f}"


def format_date(value: date) -> str:
    """Write `YYYYMMDD`."""
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"
