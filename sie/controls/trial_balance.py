"""The trial balance, accumulated as the reader's events stream past, and every year's controls.

Memory grows with the number of accounts and years, never with vouchers: a voucher's
`#TRANS` rows are added to per-account movements as it passes and then forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Final, cast

from sie.controls.accounts import is_result_account
from sie.controls.checks import account_findings, opening_unbalanced, stated_inconsistent
from sie.controls.continuity import continuity_findings
from sie.controls.model import ControlFinding, ControlsResult, TrialBalanceRow, YearControls
from sie.records import Account, Balance, BalanceKind, Event, FinancialYear, RowKind, Voucher
from sie.values import ore_decimal

# Final: compiled, each is a C static, not a lookup in the module's globals per voucher row.
ZERO: Final = Decimal(0)
_TRANS: Final = RowKind.TRANS
_VOUCHER: Final = Voucher
_BALANCE: Final = Balance
_ACCOUNT: Final = Account
_YEAR: Final = FinancialYear
"""The event types, as C statics when compiled: `observe` runs for every event."""
_STATED: Final = (BalanceKind.IB, BalanceKind.UB, BalanceKind.RES)
Stated = dict[str, tuple[Decimal, int]]


class YearEndControls:
    """Accumulates balances and voucher movements; `finish()` runs the controls.

    Use it on the same event stream as any other consumer of `SieReader`:
    `observe(event)` per event or `feed(events)` per batch, then `finish()` once.
    Only `#RAR`, `#KONTO`, `#IB`, `#UB`, `#RES` and `#VER` events matter; the rest
    (findings included) are ignored.
    """

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._years: dict[int, FinancialYear] = {}
        self._stated: dict[tuple[BalanceKind, int], Stated] = {}
        self._moves: dict[int, dict[str, int]] = {}
        """Per year, each account's #TRANS sum in öre (integers: a row adds its `ore`)."""
        self._vouchers: dict[int, int] = {}
        # The year the last voucher was booked in, its movements, and the vouchers booked in
        # it since it became the last (not yet in `_vouchers`): a year's vouchers come
        # together, so most vouchers need no lookup of their year.
        self._last_year: int | None = None
        self._last_moves: dict[str, int] = {}
        self._last_vouchers = 0

    def feed(self, events: Iterable[Event]) -> None:
        """Observe every event of a batch (e.g. what `SieReader.feed()` returned)."""
        for event in events:
            self.observe(event)

    def observe(self, event: Event) -> None:
        """Take one event into account."""
        kind = type(event)
        if kind is _VOUCHER:
            self._voucher(cast(Voucher, event))
        elif kind is _BALANCE:
            self._balance(cast(Balance, event))
        elif kind is _ACCOUNT:
            account = cast(Account, event)
            self._names[account.number] = account.name
        elif kind is _YEAR:
            year = cast(FinancialYear, event)
            self._years[year.index] = year

    def _voucher(self, voucher: Voucher) -> None:
        year = voucher.year
        if year is None:
            if self._years:  # dated outside every #RAR year: no year to book it in
                return
            year = 0
        moves = self._last_moves if year == self._last_year else self._last(year)
        self._last_vouchers += 1
        for row in voucher.rows:
            if row.kind is _TRANS:
                account = row.account
                moves[account] = moves.get(account, 0) + row.ore

    def _last(self, year: int | None) -> dict[str, int]:
        """Make `year` the last year booked in (None: none); its movements."""
        last = self._last_year
        if last is not None:
            self._vouchers[last] = self._vouchers.get(last, 0) + self._last_vouchers
        self._last_year, self._last_vouchers = year, 0
        if year is None:
            self._last_moves = {}
        else:
            moves = self._moves.get(year)
            if moves is None:
                moves = self._moves[year] = {}
            self._last_moves = moves
        return self._last_moves

    def _balance(self, balance: Balance) -> None:
        if balance.kind not in _STATED:
            return
        stated = self._stated.setdefault((balance.kind, balance.year), {})
        known = stated.get(balance.account)
        if known is None:
            stated[balance.account] = (balance.amount, balance.line)
        else:  # a repeated record adds up; the first line stays the reference
            stated[balance.account] = (known[0] + balance.amount, known[1])

    def finish(self) -> ControlsResult:
        """Build every year's trial balance and run the controls, newest year first."""
        self._last(None)  # the last year's vouchers counted in `_vouchers`
        indices = set(self._years) | set(self._moves) | {year for _, year in self._stated}
        built: dict[int, YearControls] = {}
        for index in sorted(indices, reverse=True):
            built[index] = self._year(index)
        years: list[YearControls] = []
        for index, year in built.items():
            findings = list(year.findings)
            previous = built.get(index - 1)
            if previous is not None:
                findings.extend(continuity_findings(previous, year, same_file=True))
            years.append(_with_findings(year, findings))
        return ControlsResult(tuple(years))

    def _year(self, index: int) -> YearControls:
        opening = self._stated.get((BalanceKind.IB, index))
        closing = self._stated.get((BalanceKind.UB, index))
        results = self._stated.get((BalanceKind.RES, index))
        moves = self._moves.get(index)
        accounts = set(opening or ()) | set(closing or ()) | set(results or ()) | set(moves or ())
        rows = tuple(
            _row(account, self._names.get(account, ""), opening, closing, results, moves)
            for account in sorted(accounts)
        )
        findings: list[ControlFinding] = account_findings(index, rows)
        previous_results = self._stated.get((BalanceKind.RES, index - 1))
        previous_result = (
            sum((amount for amount, _ in previous_results.values()), ZERO)
            if previous_results is not None
            else None
        )
        unbalanced = opening_unbalanced(index, rows, previous_result)
        if unbalanced is not None:
            findings.append(unbalanced)
        if opening is not None and closing is not None and results is not None:
            inconsistent = stated_inconsistent(index, rows)
            if inconsistent is not None:
                findings.append(inconsistent)
        return YearControls(
            index=index,
            financial_year=self._years.get(index),
            rows=rows,
            findings=tuple(findings),
            carries_opening=opening is not None,
            carries_closing=closing is not None,
            carries_results=results is not None,
            vouchers=self._vouchers.get(index, 0),
        )


def _row(
    account: str,
    name: str,
    opening: Stated | None,
    closing: Stated | None,
    results: Stated | None,
    moves: dict[str, int] | None,
) -> TrialBalanceRow:
    """One trial-balance row; a kind the year carries but the account lacks counts as 0."""
    ib = opening.get(account) if opening is not None else None
    ub = closing.get(account) if closing is not None else None
    res = results.get(account) if results is not None else None
    result = is_result_account(account, has_result=res is not None)
    start = ib[0] if ib is not None else (ZERO if opening is not None or result else None)
    movement = ore_decimal(moves.get(account, 0)) if moves is not None else None
    end = start + movement if start is not None and movement is not None else None
    stated = res if result else ub
    return TrialBalanceRow(
        account=account,
        name=name,
        result=result,
        opening=start,
        movement=movement,
        closing=end,
        stated_closing=_stated_amount(ub, closing),
        stated_result=_stated_amount(res, results) if result else None,
        opening_line=ib[1] if ib is not None else None,
        stated_line=stated[1] if stated is not None else None,
    )


def _stated_amount(entry: tuple[Decimal, int] | None, kind: Stated | None) -> Decimal | None:
    """The stated amount; 0 when the year carries the kind but not this account."""
    if entry is not None:
        return entry[0]
    return ZERO if kind is not None else None


def _with_findings(year: YearControls, findings: list[ControlFinding]) -> YearControls:
    return replace(year, findings=tuple(findings))
