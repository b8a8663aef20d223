"""Hypothesis strategies for SIE documents the writer can represent exactly."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from sie import (
    Account,
    Address,
    Balance,
    BalanceKind,
    Dimension,
    FinancialYear,
    Generated,
    ObjectDef,
    OrgNumber,
    Program,
    RowKind,
    SieDocument,
    TextLabel,
    TransRow,
    Voucher,
)

_REPAIRED_GLYPHS = b"\xc4\xc5\xd6\xdc\xe4\xe5\xe9\xf6\xfc"
"""CP437 glyphs (─ ┼ ╓ ▄ Σ σ Θ ÷ ⁿ) the reader takes for Latin-1 letters when glued to a
letter (the documented repair rule in `sie.charset`), so they cannot round-trip there."""
_CP437_TEXT = "".join(
    bytes([b]).decode("cp437")
    for b in range(32, 256)
    if b != 127 and b not in _REPAIRED_GLYPHS and not 0xB0 <= b <= 0xDF
)
"""Printable CP437 without the box-drawing block 0xB0-0xDF: a box glyph followed by an
accented letter is also valid UTF-8 of a Latin letter, which byte sniffing must read as
UTF-8 (sie.charset); no accounting text holds such pairs."""
text = st.text(alphabet=_CP437_TEXT, max_size=12).filter(lambda t: not t.endswith("\\"))
word = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=6)
account = st.integers(1000, 8999).map(str)
days = st.dates(date(1990, 1, 1), date(2090, 12, 31))
amount = st.integers(-(10**15) + 1, 10**15 - 1).map(lambda ore: Decimal(ore).scaleb(-2))
ore = st.integers(-(10**17) + 1, 10**17 - 1)
"""A row's öre, up to the 15 integer digits an amount may have."""
quantity = st.none() | st.decimals(-(10**6), 10**6, places=3, allow_nan=False)
objects = st.lists(st.tuples(st.integers(1, 30).map(str), text), max_size=3).map(tuple)


@st.composite
def rows(draw: st.DrawFn) -> TransRow:
    return TransRow(
        draw(st.sampled_from(RowKind)),
        draw(account),
        draw(ore),
        draw(objects),
        draw(st.none() | days),
        draw(text),
        draw(quantity),
        draw(text),
    )


@st.composite
def vouchers(draw: st.DrawFn) -> Voucher:
    return Voucher(
        draw(st.just("") | word),
        draw(st.just("") | st.integers(1, 10**6).map(str)),
        draw(days),
        tuple(draw(st.lists(rows(), max_size=4))),
        draw(text),
        draw(st.none() | days),
        draw(text),
    )


@st.composite
def balances(draw: st.DrawFn) -> Balance:
    kind = draw(st.sampled_from(BalanceKind))
    periodic = kind in (BalanceKind.PSALDO, BalanceKind.PBUDGET)
    with_objects = kind not in (BalanceKind.IB, BalanceKind.UB, BalanceKind.RES)
    return Balance(
        kind,
        draw(st.integers(-3, 0)),
        draw(account),
        draw(amount),
        draw(quantity),
        draw(objects) if with_objects else (),
        draw(days).replace(day=1) if periodic else None,
    )


@st.composite
def documents(draw: st.DrawFn, import_file: bool = False) -> SieDocument:
    labels = [TextLabel.PROSA, TextLabel.FTYP, TextLabel.FNR, TextLabel.KPTYP, TextLabel.VALUTA]
    if not import_file:
        labels.append(TextLabel.BKOD)
    chosen = draw(st.lists(st.sampled_from(labels), unique=True))
    order = list(TextLabel)
    texts = tuple(
        sorted(((label, draw(text)) for label in chosen), key=lambda t: order.index(t[0]))
    )
    start = draw(days)
    return SieDocument(
        program=Program(draw(text), draw(text)),
        generated=Generated(draw(days), draw(text)),
        company_name=draw(text),
        flag=0 if import_file else draw(st.sampled_from([0, 1])),
        texts=texts,
        org_number=draw(st.none() | st.builds(OrgNumber, text, text, text)),
        address=draw(st.none() | st.builds(Address, text, text, text, text)),
        financial_years=(
            FinancialYear(0, start, start + timedelta(days=draw(st.integers(0, 500)))),
        ),
        tax_year=draw(st.none() | st.integers(1990, 2090)),
        extent=None if import_file else draw(st.none() | days),
        accounts=tuple(draw(st.lists(st.builds(Account, account, text), max_size=3))),
        dimensions=tuple(
            draw(st.lists(st.builds(Dimension, word, text, st.just("") | word), max_size=2))
        ),
        objects=tuple(draw(st.lists(st.builds(ObjectDef, word, text, text), max_size=2))),
        balances=() if import_file else tuple(draw(st.lists(balances(), max_size=4))),
        vouchers=tuple(draw(st.lists(vouchers(), max_size=3))),
    )
