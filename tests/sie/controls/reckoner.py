"""An independent, minimal reckoning of the year-end controls straight from the file's lines.

It shares no code with `sie`: a regex tokenizer and plain dictionaries, enough for the
labels the controls use (`#RAR #IB #UB #RES #VER #TRANS`). The tests compare the library's
findings with what this derives, so neither freezes the other's output.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\{[^}]*\}|[^\s{}"]+|[{}]')
ZERO = Decimal(0)


@dataclass
class Books:
    """What a file states and what its vouchers move, per year index."""

    stated: dict[tuple[str, int], dict[str, Decimal]] = field(default_factory=dict)
    moves: dict[int, dict[str, Decimal]] = field(default_factory=dict)
    years: dict[int, tuple[dt.date, dt.date]] = field(default_factory=dict)

    def kind(self, label: str, year: int) -> dict[str, Decimal] | None:
        return self.stated.get((label, year))

    def is_result(self, account: str, year: int) -> bool:
        if account[:1] in ("1", "2"):
            return False
        if account[:1] in tuple("345678"):
            return True
        return account in (self.kind("RES", year) or {})


def _date(text: str) -> dt.date:
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def reckon(data: bytes) -> Books:
    """Read the stated balances and the voucher movements of one SIE file."""
    books = Books()
    day: dt.date | None = None
    for raw in re.split(r"\r\n|\r|\n", data.decode("latin-1")):
        tokens = [t.strip('"') for t in _TOKEN.findall(raw)]
        try:
            day = _line(books, tokens, day)
        except (IndexError, ValueError, ArithmeticError):  # malformed: the reader skips it
            if tokens[0].upper() == "#VER":
                day = None
    return books


def _line(books: Books, tokens: list[str], day: dt.date | None) -> dt.date | None:
    """Take one tokenized line into `books`; return the current voucher date."""
    if tokens:
        label = tokens[0].upper()
        if label == "#RAR":
            books.years[int(tokens[1])] = (_date(tokens[2]), _date(tokens[3]))
        elif label in ("#IB", "#UB", "#RES"):
            year, account, amount = int(tokens[1]), tokens[2], Decimal(tokens[3])
            stated = books.stated.setdefault((label[1:], year), {})
            stated[account] = stated.get(account, ZERO) + amount
        elif label == "#VER":
            return _date(tokens[3])
        elif label == "#TRANS" and day is not None:
            year_of = _year_of(books, day)
            if year_of is not None:
                moves = books.moves.setdefault(year_of, {})
                moves[tokens[1]] = moves.get(tokens[1], ZERO) + Decimal(tokens[3])
    return day


def _year_of(books: Books, day: dt.date) -> int | None:
    if not books.years:
        return 0
    return next((i for i, (a, b) in books.years.items() if a <= day <= b), None)


def expected_findings(books: Books) -> set[tuple[str, int, str | None]]:
    """(code, year, account) of every finding the year-end control rules call for.

    For `OPENING_NOT_PREVIOUS_CLOSING` it lists every differing account, whether the
    library reports it alone or inside an explained note.
    """
    found: set[tuple[str, int, str | None]] = set()
    indices = {y for _, y in books.stated} | set(books.moves)
    for year in indices:
        ib, ub, res = (books.kind(k, year) for k in ("IB", "UB", "RES"))
        moves = books.moves.get(year)
        accounts = set(ib or {}) | set(ub or {}) | set(res or {}) | set(moves or {})
        for account in accounts:
            movement = None if moves is None else moves.get(account, ZERO)
            if books.is_result(account, year):
                if movement is not None and res is not None and movement != res.get(account, ZERO):
                    found.add(("RESULT_MISMATCH", year, account))
            elif movement is not None and ib is not None and ub is not None:
                closing = ib.get(account, ZERO) + movement
                if closing != ub.get(account, ZERO):
                    found.add(("CLOSING_BALANCE_MISMATCH", year, account))
        if ib is not None and sum(ib.values(), ZERO) != ZERO:
            found.add(("OPENING_BALANCE_SHEET_UNBALANCED", year, None))
        if ib is not None and ub is not None and res is not None:
            balance = [a for a in set(ib) | set(ub) if not books.is_result(a, year)]
            results = sum((v for a, v in res.items() if books.is_result(a, year)), ZERO)
            opening = sum((ib.get(a, ZERO) for a in balance), ZERO)
            closing = sum((ub.get(a, ZERO) for a in balance), ZERO)
            if closing + results != opening:
                found.add(("STATED_FIGURES_INCONSISTENT", year, None))
        found |= _continuity(books, year)
    return found


def _continuity(books: Books, year: int) -> set[tuple[str, int, str | None]]:
    ib, previous = books.kind("IB", year), books.kind("UB", year - 1)
    if ib is None or previous is None:
        return set()
    found: set[tuple[str, int, str | None]] = set()
    for account in set(ib) | set(previous):
        if books.is_result(account, year):
            if ib.get(account, ZERO):
                found.add(("OPENING_NOT_PREVIOUS_CLOSING", year, account))
        elif ib.get(account, ZERO) != previous.get(account, ZERO):
            found.add(("OPENING_NOT_PREVIOUS_CLOSING", year, account))
    return found
