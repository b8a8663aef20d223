"""What the year-end controls produce: trial-balance rows and findings with amounts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sie.codes import Code
from sie.findings import Finding, Severity
from sie.records import FinancialYear

CENT = Decimal("0.01")


def money(amount: Decimal | None) -> str | None:
    """Format an amount as a decimal string with two decimals (None stays None)."""
    return None if amount is None else str(amount.quantize(CENT))


@dataclass(frozen=True, slots=True)
class TrialBalanceRow:
    """One account of one year: stated figures next to the ones computed from vouchers.

    An amount is None when the file does not carry what it needs (no `#IB` for the year,
    no vouchers, no `#UB`/`#RES`); an absent record of a kind the year does carry counts
    as zero, as exporters omit zero balances.

    Attributes:
        result: True for a result account (compared with `#RES`), False for a balance
            account (compared with `#UB`).
        opening_line / stated_line: source lines of the `#IB` and of the `#UB` (balance
            account) or `#RES` (result account), None when absent.
    """

    account: str
    name: str
    result: bool
    opening: Decimal | None
    movement: Decimal | None
    closing: Decimal | None
    stated_closing: Decimal | None
    stated_result: Decimal | None
    opening_line: int | None = None
    stated_line: int | None = None

    def as_dict(self) -> dict[str, str | None]:
        """The JSON shape of `sie balances --json` (amounts as two-decimal strings)."""
        row: dict[str, str | None] = {
            "account": self.account,
            "name": self.name,
            "opening": money(self.opening),
            "movement": money(self.movement),
            "closing": money(self.closing),
        }
        if self.result:
            row["stated_result"] = money(self.stated_result)
        else:
            row["stated_closing"] = money(self.stated_closing)
        return row


@dataclass(frozen=True, slots=True)
class AccountDifference:
    """One account whose opening differs from the previous year's closing."""

    account: str
    expected: Decimal
    found: Decimal
    line: int | None


@dataclass(frozen=True, slots=True)
class ControlFinding:
    """A control's verdict on the books; always a warning (the accountant decides).

    Attributes:
        code: one of the control codes in `sie.codes.Code`.
        year: the year index (0 current, -1 previous, ...) the finding is about.
        account: the account, or None for a finding about the whole year.
        expected: what the other figures imply; found: what the file states.
        line: source line of the stated record (None when the record is absent).
        differences: for an explained opening-versus-closing note, every account it
            covers with its own amounts; empty otherwise.
    """

    code: Code
    year: int
    account: str | None
    expected: Decimal
    found: Decimal
    line: int | None
    message: str
    differences: tuple[AccountDifference, ...] = ()
    severity: Severity = Severity.WARNING

    def as_finding(self) -> Finding:
        """The reader's finding shape, for lists that mix both."""
        return Finding(self.severity, str(self.code), self.line, self.message)

    def as_dict(self) -> dict[str, object]:
        """The reader's JSON shape plus year, account and the two amounts."""
        shape: dict[str, object] = dict(self.as_finding().as_dict())
        shape.update(
            year=self.year,
            account=self.account,
            expected=money(self.expected),
            found=money(self.found),
        )
        if self.differences:
            shape["accounts"] = [
                {
                    "account": d.account,
                    "expected": money(d.expected),
                    "found": money(d.found),
                    "line": d.line,
                }
                for d in self.differences
            ]
        return shape


@dataclass(frozen=True, slots=True)
class YearControls:
    """The trial balance and the findings of one financial year of a file.

    Attributes:
        index: the year index; financial_year: its `#RAR` (None if the file has none).
        carries_opening / carries_closing / carries_results: whether the file states
            `#IB` / `#UB` / `#RES` records for this year.
        vouchers: vouchers booked in this year (0 means movements are unknown).
    """

    index: int
    financial_year: FinancialYear | None
    rows: tuple[TrialBalanceRow, ...]
    findings: tuple[ControlFinding, ...]
    carries_opening: bool
    carries_closing: bool
    carries_results: bool
    vouchers: int

    @property
    def passed(self) -> bool:
        """True when no control raised a finding for this year."""
        return not self.findings

    def row(self, account: str) -> TrialBalanceRow | None:
        """The row of `account`, if the year has one."""
        return next((r for r in self.rows if r.account == account), None)


@dataclass(frozen=True, slots=True)
class ControlsResult:
    """Every year's controls of one file, newest year first (vouchers dated in no `#RAR`
    year are in no year's movements)."""

    years: tuple[YearControls, ...]

    @property
    def findings(self) -> tuple[ControlFinding, ...]:
        """All years' findings."""
        return tuple(f for y in self.years for f in y.findings)

    def year(self, index: int) -> YearControls | None:
        """The controls of year `index`, if the file has that year."""
        return next((y for y in self.years if y.index == index), None)
