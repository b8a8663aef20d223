"""Opening balances versus the previous year's closing, with the usual reasons recognised.

Real files often open a year with balances that differ from last year's closing on
purpose: last year's result moved from 2099 to retained earnings, VAT accounts settled,
result accounts carried in `#IB` by some programs. Differences that fit such a pattern
are reported together as one explained note; only the rest get a warning per account.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from decimal import Decimal

from sie.codes import Code
from sie.controls.accounts import is_equity_account, is_vat_account
from sie.controls.model import (
    AccountDifference,
    ControlFinding,
    ControlsResult,
    YearControls,
    money,
)

ZERO = Decimal(0)
_VAT_ROUNDING = Decimal(1)  # VAT is settled in whole kronor; the öre go to 3740
_CARRIED = "result accounts carried in #IB (a result account opens at zero)"


def continuity_findings(
    previous: YearControls, current: YearControls, *, same_file: bool = False
) -> list[ControlFinding]:
    """`OPENING_NOT_PREVIOUS_CLOSING` for `current`'s `#IB` against `previous`'s closing.

    The previous closing is the stated `#UB`, or opening + movement when the previous
    year states no `#UB`. Nothing is compared when either side is not carried.
    `same_file` tells whether both years come from one file (then a missing `#IB`
    points at the previous year's `#UB` line).
    """
    closings = _closings(previous)
    if closings is None or not current.carries_opening:
        return []
    balance: list[AccountDifference] = []
    carried: list[AccountDifference] = []
    rows = {r.account: r for r in current.rows}
    for account in sorted(rows.keys() | closings.keys()):
        row = rows.get(account)
        if row is not None and row.result:
            if row.opening_line is not None and row.opening:
                carried.append(AccountDifference(account, ZERO, row.opening, row.opening_line))
            continue
        expected, previous_line = closings.get(account, (ZERO, None))
        found = row.opening if row is not None and row.opening is not None else ZERO
        if found != expected:
            line = row.opening_line if row is not None else None
            if line is None and same_file:
                line = previous_line
            balance.append(AccountDifference(account, expected, found, line))
    return _report(previous, current, balance, carried, same_file)


def cross_year_findings(results: Sequence[ControlsResult]) -> list[ControlFinding]:
    """Continuity across the files of one import, one file per year, oldest first.

    Each file's year 0 opening is compared with the previous file's year 0 closing;
    a pair whose `#RAR` dates show they are not consecutive years is skipped.
    """
    found: list[ControlFinding] = []
    for earlier, later in itertools.pairwise(results):
        previous, current = earlier.year(0), later.year(0)
        if previous is None or current is None or not _consecutive(previous, current):
            continue
        found.extend(continuity_findings(previous, current))
    return found


def _consecutive(previous: YearControls, current: YearControls) -> bool:
    if previous.financial_year is None or current.financial_year is None:
        return True
    return previous.financial_year.end + dt.timedelta(days=1) == current.financial_year.start


def _closings(previous: YearControls) -> dict[str, tuple[Decimal, int | None]] | None:
    """Balance accounts' closing (amount, line) of `previous`, or None if unknown."""
    stated = previous.carries_closing
    if not stated and not (previous.vouchers and previous.carries_opening):
        return None
    closings: dict[str, tuple[Decimal, int | None]] = {}
    for row in previous.rows:
        if row.result:
            continue
        amount = row.stated_closing if stated else row.closing
        if amount is not None:
            closings[row.account] = (amount, row.stated_line if stated else None)
    return closings


def _report(
    previous: YearControls,
    current: YearControls,
    balance: list[AccountDifference],
    carried: list[AccountDifference],
    same_file: bool,
) -> list[ControlFinding]:
    source = f"year {previous.index}" if same_file else _describe(previous)
    explained: list[tuple[str, list[AccountDifference]]] = []
    vat = [d for d in balance if is_vat_account(d.account)]
    rounding = _net(vat)
    if vat and abs(rounding) < _VAT_ROUNDING:
        note = f", rounded by {money(rounding)}" if rounding else ""
        explained.append((f"VAT accounts settled at opening{note}", vat))
        vat, rest = [], [d for d in balance if not is_vat_account(d.account)]
    else:
        rounding, rest = ZERO, list(balance)
    equity = [d for d in rest if is_equity_account(d.account)]
    reason = _equity_reason(_net(equity), rounding, _previous_result(previous))
    if equity and reason:
        explained.insert(0, (reason, equity))
        rest = [d for d in rest if not is_equity_account(d.account)]
    rest.sort(key=lambda d: d.account)
    if carried:
        explained.append((_CARRIED, carried))
    found = [_note(current.index, source, explained)] if explained else []
    for d in rest:
        message = (
            f"account {d.account} year {current.index}: #IB states {money(d.found)} but"
            f" {source} closed at {money(d.expected)} (difference {money(d.found - d.expected)})"
        )
        found.append(
            ControlFinding(
                Code.OPENING_NOT_PREVIOUS_CLOSING,
                current.index,
                d.account,
                d.expected,
                d.found,
                d.line,
                message,
            )
        )
    return found


def _net(group: list[AccountDifference]) -> Decimal:
    return sum((d.found - d.expected for d in group), ZERO)


def _equity_reason(net: Decimal, rounding: Decimal, previous_result: Decimal | None) -> str:
    """Why equity accounts differ, or "" when no known pattern fits.

    Netting to zero means last year's result moved between equity accounts (2099 to
    retained earnings); netting to last year's result means that result, absent from
    last year's closing balance sheet, was booked to equity at opening. The VAT
    settlement's öre `rounding` (part of that result) may make up the rest.
    """
    for total in (net, net + rounding):
        if total == ZERO:
            return "previous result moved to equity at opening"
        if total == previous_result:
            return f"previous year's result {money(total)} booked to equity at opening"
    return ""


def _previous_result(previous: YearControls) -> Decimal | None:
    """The previous year's result: its stated `#RES`, else its result accounts' movements."""
    if previous.carries_results:
        return sum((r.stated_result or ZERO for r in previous.rows if r.result), ZERO)
    if previous.vouchers:
        return sum((r.movement or ZERO for r in previous.rows if r.result), ZERO)
    return None


def _note(
    year: int, source: str, explained: list[tuple[str, list[AccountDifference]]]
) -> ControlFinding:
    """One explained note covering every difference that fits a known pattern."""
    differences = tuple(d for _, group in explained for d in group)
    parts = []
    for reason, group in explained:
        accounts = ", ".join(
            f"{d.account} {money(d.expected)} -> {money(d.found)}" for d in group
        )
        parts.append(f"{reason} ({accounts})")
    message = (
        f"year {year}: opening differs from {source}'s closing on {len(differences)}"
        f" account(s), explained: {'; '.join(parts)}"
    )
    lines = [d.line for d in differences if d.line is not None]
    return ControlFinding(
        Code.OPENING_NOT_PREVIOUS_CLOSING,
        year,
        differences[0].account if len(differences) == 1 else None,
        sum((d.expected for d in differences), ZERO),
        sum((d.found for d in differences), ZERO),
        min(lines) if lines else None,
        message,
        differences,
    )


def _describe(year: YearControls) -> str:
    span = year.financial_year
    if span is None:
        return "the previous file's year"
    return f"the previous file's year {span.start.isoformat()}..{span.end.isoformat()}"

