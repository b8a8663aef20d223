"""Fortnox's rules for ``POST /3/vouchers``, turning a JSON body into a booked voucher."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox import errors
from sandbox.books import Books
from sandbox.errors import FortnoxError
from sandbox.model import FinancialYear, Voucher, VoucherRow


def _text(body: dict[str, Any], field: str, limit: int, required: bool = False) -> str:
    value = body.get(field)
    if value is None or value == "":
        if required:
            raise FortnoxError(errors.MISSING_FIELD, field)
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise FortnoxError(errors.INVALID_FIELD, field)
    return value


#: Fortnox takes amounts of at most 14 digits, the two decimals included.
MAX_ORE = 10**14 - 1


def _ore(value: Any, field: str) -> int:
    """A JSON amount as öre; more than two decimals, more than 14 digits or a non-number is
    invalid."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FortnoxError(errors.INVALID_FIELD, field)
    try:
        amount = Decimal(str(value)) * 100
    except InvalidOperation as exc:
        raise FortnoxError(errors.INVALID_FIELD, field) from exc
    if amount != amount.to_integral_value() or amount < 0 or amount > MAX_ORE:
        raise FortnoxError(errors.INVALID_FIELD, field)
    return int(amount)


def parse_rows(books: Books, raw_rows: Any) -> list[VoucherRow]:
    """Validate ``VoucherRows`` against the chart, cost centres and projects."""
    if not isinstance(raw_rows, list) or len(raw_rows) < 2:
        raise FortnoxError(errors.TOO_FEW_ROWS)
    rows: list[VoucherRow] = []
    for raw in raw_rows:
        if not isinstance(raw, dict):
            raise FortnoxError(errors.INVALID_FIELD, "VoucherRows")
        try:
            number = int(raw.get("Account"))  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise FortnoxError(errors.MISSING_FIELD, "Account") from exc
        account = books.accounts.get(number)
        if account is None:
            raise FortnoxError(errors.ACCOUNT_NOT_FOUND)
        if not account.active:
            raise FortnoxError(errors.ACCOUNT_INACTIVE, number)
        debit, credit = _ore(raw.get("Debit"), "Debit"), _ore(raw.get("Credit"), "Credit")
        if debit and credit:
            raise FortnoxError(errors.ROW_DEBIT_AND_CREDIT)
        cost_center = _text(raw, "CostCenter", 10)
        if cost_center and not (cost_center in books.cost_centers
                                and books.cost_centers[cost_center].active):
            raise FortnoxError(errors.UNKNOWN_COST_CENTER, cost_center)
        project = _text(raw, "Project", 20)
        if project and not (project in books.projects
                            and books.projects[project].status != "COMPLETED"):
            raise FortnoxError(errors.UNKNOWN_PROJECT, project)
        rows.append(VoucherRow(
            number, debit - credit, _text(raw, "Description", 200), cost_center, project,
            _text(raw, "TransactionInformation", 100)))
    if sum(r.amount for r in rows) != 0:
        raise FortnoxError(errors.UNBALANCED)
    return rows


def post_voucher(books: Books, year: FinancialYear, body: Any, now: datetime) -> Voucher:
    """Check a ``{"Voucher": {...}}`` body against Fortnox's rules and book it in ``year``."""
    if not isinstance(body, dict) or not isinstance(body.get("Voucher"), dict):
        raise FortnoxError(errors.MISSING_FIELD, "Voucher")
    data: dict[str, Any] = body["Voucher"]
    description = _text(data, "Description", 200, required=True)
    series = _text(data, "VoucherSeries", 10, required=True)
    try:
        day = date.fromisoformat(_text(data, "TransactionDate", 10, required=True))
    except ValueError as exc:
        raise FortnoxError(errors.INVALID_FIELD, "TransactionDate") from exc
    if series not in books.series:
        raise FortnoxError(errors.SERIES_NOT_FOUND, series)
    if books.year_for_date(day) is None:
        raise FortnoxError(errors.NO_FINANCIAL_YEAR)
    if not year.contains(day):
        raise FortnoxError(errors.DATE_OUTSIDE_YEAR)
    if books.locked_until is not None and day <= books.locked_until:
        raise FortnoxError(errors.PERIOD_LOCKED)
    rows = parse_rows(books, data.get("VoucherRows"))
    with books.lock:
        voucher = books.add_voucher(Voucher(
            series, 0, year.id, day, description, rows, now.date(), "MANUAL",
            comments=_text(data, "Comments", 1000), created_via_api=True, last_modified=now))
        books.touch(year.id)
    return voucher
