"""One Fortnox company's books: the ledger (vouchers per year and series), balances derived
from it, and the sub-ledgers and documents that were booked into it."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from sandbox.model import (
    Account,
    CostCenter,
    FinancialYear,
    Invoice,
    Party,
    Project,
    StoredFile,
    Tenant,
    Voucher,
    VoucherRef,
    VoucherRow,
    VoucherSeries,
)

RESULT_ACCOUNT_FROM = 3000
CLOSING_SERIES = "I"
YEAR_RESULT_ACCOUNT = 8999
YEAR_RESULT_EQUITY_ACCOUNT = 2099


def is_balance_account(number: int) -> bool:
    """BAS classes 1–2 are balance-sheet accounts; 3–8 are result accounts."""
    return number < RESULT_ACCOUNT_FROM


@dataclass(slots=True)
class YearBalances:
    """Per-account figures of one year, all in öre, debit positive."""

    opening: dict[int, int]
    movement: dict[int, int]
    period: dict[tuple[int, str], int]
    object_period: dict[tuple[int, int, str, str], int]

    def closing(self, account: int) -> int:
        """Closing balance of a balance account (opening + movement)."""
        return self.opening.get(account, 0) + self.movement.get(account, 0)


@dataclass(slots=True)
class FileConnection:
    """A document attached to a voucher."""

    file_id: str
    voucher: VoucherRef


@dataclass
class Books:
    """Everything one Fortnox company holds. Mutations take ``lock``."""

    tenant: Tenant
    accounts: dict[int, Account]
    series: dict[str, VoucherSeries]
    opening: dict[int, int]
    cost_centers: dict[str, CostCenter] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    customers: dict[str, Party] = field(default_factory=dict)
    suppliers: dict[str, Party] = field(default_factory=dict)
    invoices: dict[int, Invoice] = field(default_factory=dict)
    supplier_invoices: dict[int, Invoice] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    voucher_files: list[FileConnection] = field(default_factory=list)
    locked_until: date | None = None
    closed_year_ids: set[int] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _vouchers: dict[int, dict[str, list[Voucher]]] = field(default_factory=dict)
    _version: int = 0
    _balance_cache: dict[int, tuple[int, YearBalances]] = field(default_factory=dict)

    # -- years -------------------------------------------------------------------------
    def year(self, year_id: int) -> FinancialYear | None:
        """The financial year with this id, if any."""
        return next((y for y in self.tenant.years if y.id == year_id), None)

    def year_for_date(self, day: date) -> FinancialYear | None:
        """The financial year containing ``day``, if any."""
        return next((y for y in self.tenant.years if y.contains(day)), None)

    def current_year(self, today: date) -> FinancialYear:
        """Fortnox's preselected year: the one containing today, else the latest."""
        return self.year_for_date(today) or self.tenant.years[-1]

    def previous_year(self, year_id: int) -> FinancialYear | None:
        """The year before ``year_id``, if the company has it."""
        ids = [y.id for y in self.tenant.years]
        index = ids.index(year_id)
        return self.tenant.years[index - 1] if index > 0 else None

    @property
    def version(self) -> int:
        """Grows with every change to the books (a key for anything derived from them)."""
        return self._version

    # -- vouchers ----------------------------------------------------------------------
    def add_voucher(self, voucher: Voucher) -> Voucher:
        """Book ``voucher`` with the next number of its series and year."""
        with self.lock:
            numbered = self._vouchers.setdefault(voucher.year_id, {}).setdefault(
                voucher.series, []
            )
            voucher.number = len(numbered) + 1
            numbered.append(voucher)
            self._version += 1
            return voucher

    def next_number(self, year_id: int, series: str) -> int:
        """The number the next voucher of ``series`` in ``year_id`` gets."""
        return len(self._vouchers.get(year_id, {}).get(series, [])) + 1

    def voucher(self, year_id: int, series: str, number: int) -> Voucher | None:
        """One voucher, or None."""
        numbered = self._vouchers.get(year_id, {}).get(series, [])
        found = numbered[number - 1] if 1 <= number <= len(numbered) else None
        return None if found is None or found.deleted else found

    def vouchers(self, year_id: int, series: str | None = None) -> list[Voucher]:
        """A snapshot list of a year's vouchers, ordered by series then number."""
        with self.lock:
            by_series = self._vouchers.get(year_id, {})
            codes = [series] if series is not None else sorted(by_series)
            return [v for code in codes for v in by_series.get(code, []) if not v.deleted]

    def replace_rows(self, voucher: Voucher, rows: list[VoucherRow], when: datetime) -> None:
        """Change a voucher's rows (the old ones stay as removed history) and re-derive."""
        with self.lock:
            voucher.rows = [*voucher.rows, *rows]
            voucher.last_modified = when
            self.touch(voucher.year_id)

    def delete_voucher(self, voucher: Voucher, when: datetime) -> None:
        """Take a voucher out of the books (its number stays used) and re-derive."""
        with self.lock:
            voucher.deleted = True
            voucher.last_modified = when
            self.touch(voucher.year_id)

    def touch(self, year_id: int) -> None:
        """Record a change in ``year_id``: re-derive its closing entry and drop caches."""
        with self.lock:
            self._version += 1
            if year_id in self.closed_year_ids:
                self._derive_closing(year_id)
                self._version += 1

    def close_year(self, year_id: int, when: datetime) -> None:
        """Book the year's result to equity in the closing series (8999 against 2099)."""
        year = self.year(year_id)
        assert year is not None
        closing = Voucher(
            series=CLOSING_SERIES, number=0, year_id=year_id, transaction_date=year.to_date,
            description="Årets resultat", rows=[], reg_date=year.to_date,
            reference_type="MANUAL", last_modified=when,
        )
        with self.lock:
            self.add_voucher(closing)
            self.closed_year_ids.add(year_id)
            self._derive_closing(year_id)

    def _derive_closing(self, year_id: int) -> None:
        closing = self.voucher(year_id, CLOSING_SERIES, 1)
        assert closing is not None
        result = sum(
            row.amount
            for v in self.vouchers(year_id)
            if v is not closing
            for row in v.live_rows()
            if not is_balance_account(row.account)
        )
        closing.rows = [
            VoucherRow(YEAR_RESULT_ACCOUNT, -result, "Årets resultat"),
            VoucherRow(YEAR_RESULT_EQUITY_ACCOUNT, result, "Årets resultat"),
        ]

    # -- balances ----------------------------------------------------------------------
    def balances(self, year_id: int) -> YearBalances:
        """Opening balances, movements and period figures of a year (cached until a change)."""
        with self.lock:
            cached = self._balance_cache.get(year_id)
            if cached is not None and cached[0] == self._version:
                return cached[1]
            previous = self.previous_year(year_id)
            if previous is None:
                opening = dict(self.opening)
            else:
                before = self.balances(previous.id)
                opening = {
                    account: before.closing(account)
                    for account in sorted(set(before.opening) | set(before.movement))
                    if is_balance_account(account) and before.closing(account) != 0
                }
            result = self._sum_year(year_id, opening)
            self._balance_cache[year_id] = (self._version, result)
            return result

    def _sum_year(self, year_id: int, opening: dict[int, int]) -> YearBalances:
        movement: dict[int, int] = defaultdict(int)
        period: dict[tuple[int, str], int] = defaultdict(int)
        object_period: dict[tuple[int, int, str, str], int] = defaultdict(int)
        for voucher in self.vouchers(year_id):
            month = voucher.transaction_date.strftime("%Y%m")
            for row in voucher.rows:
                if row.removed:
                    continue
                movement[row.account] += row.amount
                period[(row.account, month)] += row.amount
                if row.cost_center:
                    object_period[(row.account, 1, row.cost_center, month)] += row.amount
                if row.project:
                    object_period[(row.account, 6, row.project, month)] += row.amount
        return YearBalances(opening, dict(movement), dict(period), dict(object_period))

    def account_balance_at(self, account: int, day: date) -> int:
        """Balance of a balance account at the end of ``day`` (for reconciliation checks)."""
        year = self.year_for_date(day)
        if year is None:
            return 0
        total = self.balances(year.id).opening.get(account, 0)
        for voucher in self.vouchers(year.id):
            if voucher.transaction_date <= day:
                total += sum(r.amount for r in voucher.live_rows() if r.account == account)
        return total

    def iter_all_vouchers(self) -> Iterator[Voucher]:
        """Every voucher of every year."""
        for year in self.tenant.years:
            yield from self.vouchers(year.id)
