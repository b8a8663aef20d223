"""Fuzzing: no input makes the reader raise; chunking never changes what it reports."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from sie import Finding, SieReader
from sie.policy import ReadPolicy
from sie.values import (
    NO_ORE,
    ascii_number,
    format_amount,
    format_ore,
    ore_at,
    ore_decimal,
    ore_of,
    ore_value,
    parse_amount,
)

_PIECES = [
    "#FLAGGA 0", "#KSUMMA", "#KSUMMA 1", "#SIETYP 4", "#RAR 0 20250101 20251231",
    "#VER A 1 20250101", "#VER", '#VER "" "" x', "{", "}", "#TRANS 1930 {} 1",
    '#TRANS 1930 {6 "P"} -1.5 "" "t" 0',
    "#RTRANS 1 {", "#BTRANS", '#IB 0 1930 "x"', "#PSALDO 0 2025 1930 {} 1", "#OIB 0 1 {1} 2",
    '"', "\\", '\\"', "{{}}", "#", "#KONTO", "#UNDERDIM 1", "\t", " ", "\x00", "\xff", "Ö",
]  # fmt: skip
lines = st.lists(st.sampled_from(_PIECES) | st.text(max_size=20), max_size=30)
eols = st.sampled_from(["\n", "\r\n", "\r"])
_AMOUNT = re.compile(r"-?(?:\d{1,15}|\d{0,15}\.\d{1,2})")
"""The amount rule (`\\d` takes Unicode decimal digits, as `Decimal` does)."""


def _run(data: bytes, chunk: int, policy: ReadPolicy) -> list[object]:
    reader = SieReader(policy)
    events: list[object] = []
    for start in range(0, len(data), chunk):
        events += reader.feed(data[start : start + chunk])
    events += reader.close()
    return events


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 64))
def test_random_bytes_only_produce_findings(data: bytes, chunk: int) -> None:
    events = _run(data, chunk, ReadPolicy(max_line_bytes=100))
    assert events == _run(data, len(data) or 1, ReadPolicy(max_line_bytes=100))


@settings(max_examples=300, deadline=None)
@given(lines, eols, st.sampled_from(["cp437", "utf-8"]), st.integers(1, 50))
def test_sie_like_text_only_produces_findings(
    parts: list[str], eol: str, encoding: str, chunk: int
) -> None:
    data = eol.join(parts).encode(encoding, errors="replace")
    events = _run(data, chunk, ReadPolicy())
    whole = _run(data, len(data) or 1, ReadPolicy())
    assert events == whole
    assert all(isinstance(e, Finding) or getattr(e, "line", 1) >= 1 for e in events)


@settings(max_examples=1000, deadline=None)
@given(
    st.text("0123456789.-+e _\u0663\u00b2x", max_size=20) | st.from_regex(_AMOUNT, fullmatch=True)
)
def test_amounts_read_as_the_rule_says(text: str) -> None:
    parsed = parse_amount(text)
    if _AMOUNT.fullmatch(text) is None:
        assert parsed is None
    else:
        assert parsed is not None and str(parsed) == str(Decimal(text))


@settings(max_examples=1000, deadline=None)
@given(
    st.text("0123456789.-+e _\u0663\u00b2x", max_size=20) | st.from_regex(_AMOUNT, fullmatch=True)
)
def test_amounts_read_in_ore_are_the_decimal_amounts(text: str) -> None:
    ore = ore_value(text)
    parsed = parse_amount(text)
    assert (ore == NO_ORE) == (parsed is None)
    if parsed is not None:
        assert ore_decimal(ore) == parsed and ore_decimal(ore).as_tuple().exponent == -2


@settings(max_examples=500, deadline=None)
@given(st.integers(-(10**17) + 1, 10**17 - 1))
def test_ore_is_written_and_read_back_as_its_decimal(ore: int) -> None:
    assert format_ore(ore) == format_amount(ore_decimal(ore))
    assert ore_of(ore_decimal(ore)) == ore and ore_of(Decimal(format_ore(ore))) == ore


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.text("0123456789.- x\u0663", max_size=24) | st.from_regex(_AMOUNT, fullmatch=True),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, 80),
)
def test_an_amount_read_in_place_is_the_amount_cut_out(words: list[str], at: int) -> None:
    text = " ".join(words)
    start = min(at, len(text))
    end = text.find(" ", start)
    end = len(text) if end < 0 else end
    assert ore_at(text, start) == (ore_value(text[start:end]), end)


@settings(max_examples=500, deadline=None)
@given(st.text("0123456789 -x\u0663\u00b2", max_size=20))
def test_voucher_numbers_are_ascii_digits(text: str) -> None:
    plain = text.isdigit() and text.isascii() and len(text) < 19
    assert ascii_number(text) == (int(text) if plain else None)
