"""Vouchers are booked in their own year however the years alternate in the file: the controls
keep the last year's movements at hand, and must count every voucher in its year all the same."""

from __future__ import annotations

import datetime as dt

from sie.controls import YearEndControls
from sie.records import FinancialYear, RowKind, TransRow, Voucher


def _voucher(number: int, year: int | None, account: str, ore: int) -> Voucher:
    rows = (TransRow(RowKind.TRANS, account, ore), TransRow(RowKind.TRANS, "1930", -ore),
            TransRow(RowKind.RTRANS, account, 999))
    return Voucher("A", str(number), dt.date(2025, 1, 1), rows, year=year)


def _years(controls: YearEndControls) -> dict[int, tuple[int, dict[str, object]]]:
    return {y.index: (y.vouchers, {r.account: r.movement for r in y.rows})
            for y in controls.finish().years}


def test_alternating_years_are_each_counted_and_moved() -> None:
    controls = YearEndControls()
    controls.feed([FinancialYear(0, dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
                   FinancialYear(-1, dt.date(2024, 1, 1), dt.date(2024, 12, 31))])
    years = [0, 0, -1, 0, -1, -1, None, 0]  # None: outside every year, not booked
    controls.feed([_voucher(n, y, "3010", 100 * (n + 1)) for n, y in enumerate(years)])
    counted = _years(controls)
    assert counted[0][0] == 4 and counted[-1][0] == 3
    assert counted[0][1]["3010"] == sum(n + 1 for n, y in enumerate(years) if y == 0)
    assert counted[-1][1]["3010"] == sum(n + 1 for n, y in enumerate(years) if y == -1)
    assert counted[0][1]["1930"] == -counted[0][1]["3010"]


def test_vouchers_observed_after_a_finish_still_count() -> None:
    controls = YearEndControls()
    controls.observe(_voucher(1, None, "3010", 100))  # no #RAR: year 0
    assert _years(controls)[0][0] == 1
    controls.observe(_voucher(2, None, "3010", 200))
    assert _years(controls)[0] == (2, {"3010": 3, "1930": -3})
