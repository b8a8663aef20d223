"""The per-year controls: closing balances, results, and the stated figures among themselves."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sie.codes import Code
from sie.controls.model import ControlFinding, TrialBalanceRow, money

ZERO = Decimal(0)


def account_findings(year: int, rows: Sequence[TrialBalanceRow]) -> list[ControlFinding]:
    """`CLOSING_BALANCE_MISMATCH` and `RESULT_MISMATCH`, one per account that differs."""
    found: list[ControlFinding] = []
    for row in rows:
        if row.result:
            movement, stated = row.movement, row.stated_result
            if movement is not None and stated is not None and movement != stated:
                found.append(_result_mismatch(year, row, movement, stated))
            continue
        closing, stated = row.closing, row.stated_closing
        if closing is not None and stated is not None and closing != stated:
            found.append(_closing_mismatch(year, row, closing, stated))
    return found


def _closing_mismatch(
    year: int, row: TrialBalanceRow, closing: Decimal, stated: Decimal
) -> ControlFinding:
    stated_text = f"#UB {year} states {money(stated)}" if row.stated_line else "no #UB (0.00)"
    message = (
        f"account {row.account} year {year}: {stated_text} but opening {money(row.opening)}"
        f" + movement {money(row.movement)} = {money(closing)}"
        f" (difference {money(stated - closing)})"
    )
    return ControlFinding(
        Code.CLOSING_BALANCE_MISMATCH, year, row.account, closing, stated, row.stated_line, message
    )


def _result_mismatch(
    year: int, row: TrialBalanceRow, movement: Decimal, stated: Decimal
) -> ControlFinding:
    stated_text = f"#RES {year} states {money(stated)}" if row.stated_line else "no #RES (0.00)"
    message = (
        f"account {row.account} year {year}: {stated_text} but the year's #TRANS rows sum to"
        f" {money(movement)} (difference {money(stated - movement)})"
    )
    return ControlFinding(
        Code.RESULT_MISMATCH, year, row.account, movement, stated, row.stated_line, message
    )


def opening_unbalanced(
    year: int, rows: Sequence[TrialBalanceRow], previous_result: Decimal | None
) -> ControlFinding | None:
    """`OPENING_BALANCE_SHEET_UNBALANCED` when the year's `#IB` rows do not sum to zero.

    `previous_result` (the sum of the previous year's `#RES`, if stated) names the usual
    cause: that result is still outside equity.
    """
    stated = [r for r in rows if r.opening_line is not None]
    total = sum((r.opening or ZERO for r in stated), ZERO)
    if not stated or total == ZERO:
        return None
    message = f"year {year}: the #IB rows sum to {money(total)}, not 0.00"
    if previous_result is not None and previous_result == -total:
        message += (
            f"; this is year {year - 1}'s result ({money(previous_result)})"
            " not yet booked to equity"
        )
    else:
        message += " (typically the previous year's result not yet booked to equity)"
    line = min(r.opening_line for r in stated if r.opening_line is not None)
    return ControlFinding(
        Code.OPENING_BALANCE_SHEET_UNBALANCED, year, None, ZERO, total, line, message
    )


def stated_inconsistent(year: int, rows: Sequence[TrialBalanceRow]) -> ControlFinding | None:
    """`STATED_FIGURES_INCONSISTENT`: balance `#UB` + `#RES` must equal balance `#IB`.

    Each year's movements sum to zero, so the closing balances plus the results equal the
    opening balances whatever the vouchers were; a file without vouchers (type 1-3) is
    checked this way. Only call it for a year that states all three kinds.
    """
    balance = [r for r in rows if not r.result]
    opening = sum((r.opening or ZERO for r in balance), ZERO)
    closing = sum((r.stated_closing or ZERO for r in balance), ZERO)
    results = sum((r.stated_result or ZERO for r in rows if r.result), ZERO)
    if closing + results == opening:
        return None
    message = (
        f"year {year}: balance accounts' #UB ({money(closing)}) plus #RES ({money(results)})"
        f" = {money(closing + results)}, but their #IB sum to {money(opening)}: the year's"
        f" movements cannot all have balanced (difference {money(closing + results - opening)})"
    )
    lines = [r.stated_line for r in balance if r.stated_line is not None]
    return ControlFinding(
        Code.STATED_FIGURES_INCONSISTENT,
        year,
        None,
        opening,
        closing + results,
        min(lines) if lines else None,
        message,
    )
